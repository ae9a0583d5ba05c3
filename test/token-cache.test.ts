import type { OAuthResourceTokenValidation } from '@cloudflare/workers-oauth-provider';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Config, configFor } from '../src/config';
import { grantOfToken, TOKEN_CACHE_TTL_MS, TokenCache } from '../src/oauth';
import { Browser } from './fixtures/browser';
import {
  authorize,
  callback,
  consentHandle,
  decide,
  exchangeCode,
  Gateway,
  gatewayEnv,
  mcpRequest,
  RESOURCE,
  registerClient,
  signIn,
  type TokenResponse,
  tokenRequest,
} from './fixtures/gateway';

type Validation = OAuthResourceTokenValidation<{ email: string }>;

/** A validator that counts its calls and answers what `answer` says at that moment. */
function countingValidator(answer: (token: string) => Validation | null = () => valid()) {
  const calls: string[] = [];
  const validate = async (_resource: string, token: string) => {
    calls.push(token);
    return answer(token);
  };
  return { calls, validate };
}

function valid(expiresAt = Math.floor(Date.now() / 1000) + 3600): Validation {
  return { props: { email: 'alice@example.com' }, audience: RESOURCE, expiresAt, scope: ['mcp'], userId: 'alice@example.com' };
}

describe('issue #10: the token cache', () => {
  it('answers a token seen before without asking KV again', async () => {
    const cache = new TokenCache<{ email: string }>();
    const { calls, validate } = countingValidator();
    const token = 'alice@example.com:grant1:secret1';
    expect(await cache.validate(RESOURCE, token, validate)).toMatchObject({ props: { email: 'alice@example.com' } });
    expect(await cache.validate(RESOURCE, token, validate)).toMatchObject({ props: { email: 'alice@example.com' } });
    expect(calls).toHaveLength(1);
  });

  it('asks again once its TTL has passed, and for another resource', async () => {
    let now = 1_000_000;
    const cache = new TokenCache<{ email: string }>({ ttlMs: 30_000, now: () => now });
    const { calls, validate } = countingValidator();
    const token = 'alice@example.com:grant1:secret1';
    await cache.validate(RESOURCE, token, validate);
    now += 29_999;
    await cache.validate(RESOURCE, token, validate);
    expect(calls).toHaveLength(1);
    await cache.validate(`${RESOURCE}/other`, token, validate);
    expect(calls).toHaveLength(2);
    now += 2;
    await cache.validate(RESOURCE, token, validate);
    expect(calls).toHaveLength(3);
  });

  it("re-checks the token's own expiry on every hit", async () => {
    let now = 1_000_000_000_000;
    const expiresAt = now / 1000 + 10;
    let revoked = false;
    const cache = new TokenCache<{ email: string }>({ ttlMs: 60_000, now: () => now });
    const { calls, validate } = countingValidator(() => (revoked ? null : valid(expiresAt)));
    const token = 'alice@example.com:grant1:secret1';
    expect(await cache.validate(RESOURCE, token, validate)).not.toBeNull();
    revoked = true;
    now += 9_000;
    expect(await cache.validate(RESOURCE, token, validate)).not.toBeNull();
    now += 1_000;
    expect(await cache.validate(RESOURCE, token, validate)).toBeNull();
    expect(calls).toHaveLength(2);
  });

  it('never remembers a refused token, so a new one works at once', async () => {
    const cache = new TokenCache<{ email: string }>();
    let known = false;
    const { calls, validate } = countingValidator(() => (known ? valid() : null));
    const token = 'alice@example.com:grant1:secret1';
    expect(await cache.validate(RESOURCE, token, validate)).toBeNull();
    known = true;
    expect(await cache.validate(RESOURCE, token, validate)).not.toBeNull();
    expect(calls).toHaveLength(2);
  });

  it('stays within its bound, dropping the oldest first', async () => {
    const cache = new TokenCache<{ email: string }>({ maxEntries: 2 });
    const { calls, validate } = countingValidator();
    for (const n of [1, 2, 3]) await cache.validate(RESOURCE, `alice@example.com:grant${n}:secret${n}`, validate);
    expect(cache.size).toBe(2);
    await cache.validate(RESOURCE, 'alice@example.com:grant3:secret3', validate);
    expect(calls).toHaveLength(3);
    await cache.validate(RESOURCE, 'alice@example.com:grant1:secret1', validate);
    expect(calls).toHaveLength(4);
  });

  it('forgets every token of a revoked grant, and only those', async () => {
    const cache = new TokenCache<{ email: string }>();
    const { calls, validate } = countingValidator();
    const first = 'alice@example.com:grantA:secret1';
    const second = 'alice@example.com:grantA:secret2';
    const other = 'alice@example.com:grantB:secret3';
    for (const token of [first, second, other]) await cache.validate(RESOURCE, token, validate);
    cache.forgetGrant('alice@example.com', 'grantA');
    for (const token of [first, second, other]) await cache.validate(RESOURCE, token, validate);
    expect(calls).toEqual([first, second, other, first, second]);
  });

  it('does not remember a check that was in flight while a grant was revoked', async () => {
    const cache = new TokenCache<{ email: string }>();
    const token = 'alice@example.com:grantA:secret1';
    let release: () => void = () => {};
    let started: () => void = () => {};
    const called = new Promise<void>((resolve) => (started = resolve));
    const slow = async () => {
      started();
      await new Promise<void>((resolve) => (release = resolve));
      return valid();
    };
    const pending = cache.validate(RESOURCE, token, slow);
    await called;
    cache.forgetGrant('alice@example.com', 'grantA');
    release();
    await pending;
    expect(cache.size).toBe(0);
  });

  it("keeps no entry for a token that is not the library's, and never holds the token itself", async () => {
    const cache = new TokenCache<{ email: string }>();
    const { calls, validate } = countingValidator();
    await cache.validate(RESOURCE, 'opaque-token', validate);
    await cache.validate(RESOURCE, 'opaque-token', validate);
    expect(calls).toHaveLength(2);
    expect(grantOfToken('a:b:c')).toBe('a:b');
    expect(grantOfToken('user:with:colons:grant:secret')).toBe('user:with:colons:grant');
    for (const bad of ['a:b', ':b:c', 'a::c', 'a:b:', 'abc']) expect(grantOfToken(bad)).toBeUndefined();
  });
});

describe('issue #10: revoked tokens stop at once in the isolate that revoked them', () => {
  let gateway: Gateway;
  beforeEach(async () => {
    gateway = await Gateway.start();
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  const revoke = (token: string, clientId: string, hint: string) =>
    gateway.fetch('/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: hint, client_id: clientId }),
    });

  it('serves a warm token without reading KV', async () => {
    const { tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    const get = vi.spyOn(gateway.env.OAUTH_KV, 'get');
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    expect(get).not.toHaveBeenCalled();
  });

  it('refuses a just-used access token once it is revoked at /token (RFC 7009)', async () => {
    const { client, tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    expect((await revoke(tokens.access_token, client.clientId, 'access_token')).status).toBe(200);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('refuses a just-used access token once its refresh token is revoked at /token', async () => {
    const { client, tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    expect((await revoke(tokens.refresh_token, client.clientId, 'refresh_token')).status).toBe(200);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('refuses a just-used access token once a refused refresh has revoked its grant', async () => {
    const { client, tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    // This isolate's configuration stops admitting them for the refresh (tokenExchangeCallback
    // answers invalid_grant and the library revokes the grant), then admits them again: only the
    // revocation can refuse the token now.
    const config = configFor(gateway.env) as Config;
    const allowed = config.allowedEmails;
    Object.assign(config, { allowedEmails: { emails: new Set(['someone-else@example.com']), domains: new Set() } });
    const refresh = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    Object.assign(config, { allowedEmails: allowed });
    expect(refresh.status).toBe(400);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('still refuses a cached token once its owner leaves ALLOWED_EMAILS', async () => {
    const { tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    const config = configFor(gateway.env) as Config;
    const allowed = config.allowedEmails;
    Object.assign(config, { allowedEmails: { emails: new Set(['someone-else@example.com']), domains: new Set() } });
    try {
      const refused = await mcpRequest(gateway, tokens.access_token);
      expect(refused.status).toBe(403);
      expect(await refused.json()).toMatchObject({ error: { code: -32001 } });
    } finally {
      Object.assign(config, { allowedEmails: allowed });
    }
  });

  it('lets another isolate serve a revoked token only until the cache TTL runs out', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { client, tokens } = await signIn(gateway);
    const here = gateway.env;
    // A second environment object: its own configuration and token cache, as another isolate has.
    const elsewhere = gatewayEnv();
    gateway.env = elsewhere;
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    gateway.env = here;
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);

    expect((await revoke(tokens.access_token, client.clientId, 'access_token')).status).toBe(200);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
    gateway.env = elsewhere;
    vi.setSystemTime(Date.now() + TOKEN_CACHE_TTL_MS - 1_000);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    vi.setSystemTime(Date.now() + 2_000);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });
});

describe('issue #16: a /token request forgets the grants it names, however its form is spelled', () => {
  let gateway: Gateway;
  beforeEach(async () => {
    gateway = await Gateway.start();
    vi.spyOn(console, 'warn').mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  const post = (contentType: string, body: string) => gateway.fetch('/token', { method: 'POST', headers: { 'Content-Type': contentType }, body });

  /** Refused in this isolate at once, and by KV itself (a fresh cache, as another isolate has): the library did revoke. */
  async function expectRefusedHereAndInKv(token: string) {
    expect((await mcpRequest(gateway, token)).status).toBe(401);
    gateway.env = gatewayEnv();
    expect((await mcpRequest(gateway, token)).status).toBe(401);
  }

  it('refuses a just-used access token once it is revoked with an empty grant_type', async () => {
    const { client, tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    // The library reads `grant_type=` as absent: RFC 7009 revocation.
    const revoked = await tokenRequest(gateway, { grant_type: '', token: tokens.access_token, client_id: client.clientId });
    expect(revoked.status).toBe(200);
    await expectRefusedHereAndInKv(tokens.access_token);
  });

  it('refuses a just-used access token once its refresh token is revoked with a bare grant_type key and a mixed-case content type', async () => {
    const { client, tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    const body = `grant_type&tok%65n=${encodeURIComponent(tokens.refresh_token)}&token_type_hint=refresh_token&client_id=${encodeURIComponent(client.clientId)}`;
    expect((await post('Application/X-WWW-Form-URLEncoded ; charset=UTF-8', body)).status).toBe(200);
    await expectRefusedHereAndInKv(tokens.access_token);
  });

  it('refuses a just-used access token once a replayed code, sent beside an empty token field, has revoked its grant', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { verifier, response } = await authorize(gateway, browser, client);
    const toAccess = await decide(gateway, browser, await consentHandle(response));
    const back = await callback(gateway, browser, gateway.access.login(toAccess.headers.get('Location') ?? ''));
    const code = new URL(back.headers.get('Location') ?? '').searchParams.get('code') ?? '';
    const exchanged = await exchangeCode(gateway, client, code, verifier);
    expect(exchanged.status).toBe(200);
    const { access_token } = await exchanged.json<TokenResponse>();
    expect((await mcpRequest(gateway, access_token)).status).toBe(200);

    const replay = await tokenRequest(gateway, {
      token: '',
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      client_id: client.clientId,
      redirect_uri: client.redirectUri,
      resource: RESOURCE,
    });
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    await expectRefusedHereAndInKv(access_token);
  });
});
