import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LoginOptions } from './fixtures/access';
import { Browser } from './fixtures/browser';
import { callback, Gateway, gatewayEnv, loginAtAccess, signIn, storedGrants } from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** A refused login: a readable page with the given status, no redirect to the client, no grant. */
async function expectRefused(response: Response, status: number, text?: RegExp) {
  expect(response.status).toBe(status);
  expect(response.headers.get('Location')).toBeNull();
  expect(response.headers.get('Content-Type')).toContain('text/html');
  const page = await response.text();
  expect(page).toMatch(/Reference: <code>[0-9a-f-]{36}<\/code>/);
  if (text) expect(page).toMatch(text);
  expect(await storedGrants()).toBe(0);
}

const now = () => Math.floor(Date.now() / 1000);

describe('Access ID token verification', () => {
  const refusedTokens: Array<[string, () => LoginOptions]> = [
    ['wrong "iss"', () => ({ claims: { iss: 'https://evil.cloudflareaccess.com/cdn-cgi/access/sso/oidc/access-client-id' } })],
    ['wrong "aud"', () => ({ claims: { aud: 'some-other-client' } })],
    ['expired "exp"', () => ({ claims: { exp: now() - 3600, iat: now() - 7200 } })],
    ['a signature by a key Access never published', () => ({ signing: 'foreign-key' })],
    ['"alg": "none"', () => ({ signing: 'none' })],
    ['a "nonce" from another login', () => ({ claims: { nonce: 'not-the-nonce-we-sent' } })],
  ];

  it.each(refusedTokens)('refuses an ID token with %s', async (_, login) => {
    const { browser, query } = await loginAtAccess(gateway, login());
    await expectRefused(await callback(gateway, browser, query), 502, /could not verify your sign-in/);
  });

  it('refuses an ID token without an email', async () => {
    const { browser, query } = await loginAtAccess(gateway, { email: null });
    await expectRefused(await callback(gateway, browser, query), 403, /email/);
  });

  it('fetches the JWKS again when Access signs with a new key', async () => {
    await signIn(gateway);
    await gateway.access.rotateKey();
    // oauth4webapi refetches for an unknown kid once its cached set is a minute old.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    await signIn(gateway);
    expect(gateway.access.requests.filter((r) => r.endsWith('/jwks'))).toHaveLength(2);
  });
});

describe('Access callback state', () => {
  it('refuses a state used twice', async () => {
    const { browser, query } = await loginAtAccess(gateway);
    expect((await callback(gateway, browser, query)).status).toBe(302);
    const replay = await callback(gateway, browser, query);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toMatch(/no longer works/);
  });

  it('refuses a state brought to another browser', async () => {
    const { query } = await loginAtAccess(gateway);
    await expectRefused(await callback(gateway, new Browser(), query), 400, /different browser/);
  });

  it('refuses a callback with no state at all', async () => {
    await expectRefused(await callback(gateway, new Browser(), new URLSearchParams({ code: 'x' })), 400);
  });
});

describe('Access failures', () => {
  it('shows a 403 page when Access declines the person', async () => {
    const { browser, query } = await loginAtAccess(gateway);
    const declined = new URLSearchParams({ error: 'access_denied', state: query.get('state') ?? '' });
    await expectRefused(await callback(gateway, browser, declined), 403, /did not let this account in/);
    // The state was consumed: the person starts again rather than retrying the old link.
    expect((await callback(gateway, browser, query)).status).toBe(400);
  });

  it('shows a 502 page when the token endpoint fails', async () => {
    const { browser, query } = await loginAtAccess(gateway);
    gateway.access.tokenEndpointDown = true;
    await expectRefused(await callback(gateway, browser, query), 502);
  });

  it('shows a 502 page when the JWKS cannot be fetched', async () => {
    gateway.access.jwksDown = true;
    const { browser, query } = await loginAtAccess(gateway);
    await expectRefused(await callback(gateway, browser, query), 502);
  });
});

describe('who may sign in', () => {
  it('refuses an email outside ALLOWED_EMAILS with a 403 page', async () => {
    gateway.env = gatewayEnv({ ALLOWED_EMAILS: 'bob@example.com, @example.org' });
    const { browser, query } = await loginAtAccess(gateway, { email: 'alice@example.com' });
    await expectRefused(await callback(gateway, browser, query), 403, /alice@example\.com is not allowed/);
  });

  it('admits listed emails and @domain entries, whatever their case', async () => {
    gateway.env = gatewayEnv({ ALLOWED_EMAILS: 'BOB@example.com,@Example.org' });
    await signIn(gateway, { login: { email: 'bob@EXAMPLE.com' } });
    await signIn(gateway, { login: { email: 'carol@example.ORG' } });
  });

  it('refuses someone with no upstream token when there is no shared one', async () => {
    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined, USER_TOKENS: JSON.stringify({ 'bob@example.com': 'pat_bob' }) });
    const { browser, query } = await loginAtAccess(gateway, { email: 'alice@example.com' });
    await expectRefused(await callback(gateway, browser, query), 403, /no credential/);
    await signIn(gateway, { login: { email: 'bob@example.com' } });
  });
});
