import { env } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ACCESS_BASE } from './fixtures/access';
import { Browser } from './fixtures/browser';
import {
  authorize,
  callback,
  consentHandle,
  decide,
  exchangeCode,
  Gateway,
  mcpRequest,
  ORIGIN,
  PAT,
  RESOURCE,
  registerClient,
  signIn,
  tokenRequest,
} from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  gateway = await Gateway.start();
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe('discovery', () => {
  it('answers an unauthenticated /mcp with a 401 that points at the protected resource metadata', async () => {
    const response = await mcpRequest(gateway, undefined);
    expect(response.status).toBe(401);
    const challenge = response.headers.get('WWW-Authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/mcp"`);
    expect(challenge).toContain('scope="mcp"');
  });

  it.each(['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource'])(
    'serves protected resource metadata at %s naming this origin as the authorization server',
    async (path) => {
      const response = await gateway.fetch(path);
      expect(response.status).toBe(200);
      const metadata = await response.json<Record<string, unknown>>();
      expect(metadata.resource).toBe(RESOURCE);
      expect(metadata.authorization_servers).toEqual([ORIGIN]);
      expect(metadata.scopes_supported).toEqual(['mcp']);
    },
  );

  it('serves RFC 8414 metadata that lets claude.ai pick client ID metadata documents', async () => {
    const response = await gateway.fetch('/.well-known/oauth-authorization-server');
    expect(response.status).toBe(200);
    const metadata = await response.json<Record<string, unknown>>();
    expect(metadata.issuer).toBe(ORIGIN);
    expect(metadata.authorization_endpoint).toBe(`${ORIGIN}/authorize`);
    expect(metadata.token_endpoint).toBe(`${ORIGIN}/token`);
    expect(metadata.registration_endpoint).toBe(`${ORIGIN}/register`);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    expect(metadata.token_endpoint_auth_methods_supported).toContain('none');
    expect(metadata.scopes_supported).not.toContain('offline_access');
  });

  it('binds the resource to whichever origin serves the request', async () => {
    const response = await gateway.fetch('http://localhost:8787/.well-known/oauth-protected-resource/mcp');
    expect(await response.json()).toMatchObject({ resource: 'http://localhost:8787/mcp' });
  });

  it('keeps each origin to its own resource when one Worker serves several', async () => {
    // A custom domain and workers.dev share one isolate and one env.
    expect((await gateway.fetch('http://localhost:8787/')).status).toBe(200);
    const { tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
  });
});

describe('sign-in', () => {
  it('walks registration, consent, Access login and code exchange to a working token', async () => {
    const { tokens } = await signIn(gateway, { login: { email: 'Alice@Example.com', name: 'Alice' } });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.scope).toBe('mcp');
    expect(gateway.access.requests).toEqual(['POST /cdn-cgi/access/sso/oidc/access-client-id/token', 'GET /cdn-cgi/access/sso/oidc/access-client-id/jwks']);

    const response = await mcpRequest(gateway, tokens.access_token);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    // The upstream saw the gateway's PAT in place of the client's token.
    expect(gateway.upstreamAuthorizations).toEqual([`Bearer ${PAT}`]);
  });

  it('signs in a confidential client registered with client_secret_post, as claude.ai may', async () => {
    const client = await registerClient(gateway, { token_endpoint_auth_method: 'client_secret_post' });
    expect(client.clientSecret).toBeTruthy();
    const { tokens } = await signIn(gateway, { client });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
  });

  it('shows the consent page before any redirect to Access', async () => {
    const client = await registerClient(gateway, { client_name: 'Evil <script>alert(1)</script>' });
    const { response } = await authorize(gateway, new Browser(), client);
    expect(response.status).toBe(200);
    expect(response.headers.get('Location')).toBeNull();
    expect(response.headers.get('X-Frame-Options')).toBe('DENY');
    expect(response.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
    const page = await response.text();
    expect(page).toContain('Evil &#60;script&#62;alert(1)&#60;/script&#62;');
    expect(page).not.toContain('<script>');
    expect(page).toContain('localhost');
    expect(gateway.access.requests).toEqual([]);
  });

  it('redirects to Access with PKCE S256, state and nonce only after approval', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { response } = await authorize(gateway, browser, client);
    const approved = await decide(gateway, browser, await consentHandle(response));
    expect(approved.status).toBe(302);
    const location = new URL(approved.headers.get('Location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(`${ACCESS_BASE}/authorization`);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('redirect_uri')).toBe(`${ORIGIN}/callback`);
    for (const name of ['state', 'nonce', 'code_challenge']) expect(location.searchParams.get(name)).toBeTruthy();
  });

  it('remembers an approval for the same client in this browser and skips the page next time', async () => {
    const { client, browser } = await signIn(gateway);
    expect(browser.cookieNames()).toContain('__Host-oauth-approvals');
    const again = await authorize(gateway, browser, client);
    expect(again.response.status).toBe(302);
    expect(again.response.headers.get('Location')).toContain(`${ACCESS_BASE}/authorization`);

    const otherClient = await registerClient(gateway);
    const other = await authorize(gateway, browser, otherClient);
    expect(other.response.status).toBe(200);
  });

  it('sends the client access_denied when the person denies consent', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { response, state } = await authorize(gateway, browser, client);
    const denied = await decide(gateway, browser, await consentHandle(response), 'deny');
    expect(denied.status).toBe(302);
    const location = new URL(denied.headers.get('Location') ?? '');
    expect(location.href.startsWith(client.redirectUri)).toBe(true);
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('state')).toBe(state);
    expect(location.searchParams.get('iss')).toBe(ORIGIN);
    expect(gateway.access.requests).toEqual([]);
  });

  it('accepts a loopback redirect URI on any port', async () => {
    const client = await registerClient(gateway, { redirect_uris: ['http://127.0.0.1/callback'] });
    const { response } = await authorize(gateway, new Browser(), { ...client, redirectUri: 'http://127.0.0.1:51234/callback' });
    expect(response.status).toBe(200);
  });
});

describe('tokens', () => {
  it('rotates the refresh token and the new access token works', async () => {
    const { client, tokens } = await signIn(gateway);
    const refreshed = await tokenRequest(gateway, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: client.clientId,
    });
    expect(refreshed.status).toBe(200);
    const next = await refreshed.json<{ access_token: string; refresh_token: string }>();
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    expect((await mcpRequest(gateway, next.access_token)).status).toBe(200);
  });

  it('revokes a token so /mcp answers 401 again', async () => {
    const { client, tokens } = await signIn(gateway);
    const revoked = await gateway.fetch('/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token, token_type_hint: 'access_token', client_id: client.clientId }),
    });
    expect(revoked.status).toBe(200);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('refuses a token issued for another origin', async () => {
    const { tokens } = await signIn(gateway);
    const elsewhere = await gateway.fetch('https://other.example/mcp', {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.access_token}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(elsewhere.status).toBe(401);
  });
});

describe('health', () => {
  it('answers ok when the configuration is valid', async () => {
    const response = await gateway.fetch('/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ok: true });
  });

  it('lists the misconfigured variables by name only and serves a misconfigured page elsewhere', async () => {
    gateway.env = { ...env, UPSTREAM_TOKEN: 'pat_SECRET_abc', COOKIE_ENCRYPTION_KEY: 'short' } as Env;
    const health = await gateway.fetch('/health');
    expect(health.status).toBe(503);
    const body = await health.json<{ ok: boolean; problems: string[] }>();
    expect(body.ok).toBe(false);
    expect(body.problems).toContain('COOKIE_ENCRYPTION_KEY');
    expect(body.problems).toContain('ACCESS_CLIENT_ID');
    expect(JSON.stringify(body)).not.toContain('short');

    const page = await gateway.fetch('/authorize');
    expect(page.status).toBe(500);
    expect(await page.text()).toContain('misconfigured');
  });
});

describe('code exchange', () => {
  it('refuses an authorization code used twice', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { verifier, response } = await authorize(gateway, browser, client);
    const toAccess = await decide(gateway, browser, await consentHandle(response));
    const back = await callback(gateway, browser, gateway.access.login(toAccess.headers.get('Location') ?? ''));
    const code = new URL(back.headers.get('Location') ?? '').searchParams.get('code') ?? '';
    expect((await exchangeCode(gateway, client, code, verifier)).status).toBe(200);
    const replay = await exchangeCode(gateway, client, code, verifier);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
  });
});
