import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Browser } from './fixtures/browser';
import {
  authorize,
  consentHandle,
  decide,
  Gateway,
  gatewayEnv,
  mcpRequest,
  ORIGIN,
  PAT,
  RESOURCE,
  registerClient,
  signIn,
  type TokenResponse,
  tokenRequest,
} from './fixtures/gateway';

/** Several upstreams behind one gateway: each its own protected resource, credential and allowlist. */

const GITHUB_URL = 'https://github-mcp.example/mcp/';
const LINEAR_URL = 'https://linear-mcp.example/mcp';
const GITHUB_PAT = 'ghp_SECRET_github_0123456789abcdef';
const LINEAR_KEY = 'lin_api_SECRET_0123456789abcdef';
const GITHUB = `${ORIGIN}/github/mcp`;
const LINEAR = `${ORIGIN}/linear/mcp`;

const UPSTREAMS = {
  github: { url: GITHUB_URL, title: 'GitHub', token: 'GITHUB_TOKEN', authScheme: 'token' },
  linear: {
    url: LINEAR_URL,
    token: 'LINEAR_API_KEY',
    authHeader: 'X-API-Key',
    authScheme: '',
    headers: { 'X-Team': 'eng' },
    allowedEmails: 'alice@example.com',
  },
};

function severalEnv(upstreams: object = UPSTREAMS) {
  return gatewayEnv({ UPSTREAMS: JSON.stringify(upstreams), GITHUB_TOKEN: GITHUB_PAT, LINEAR_API_KEY: LINEAR_KEY });
}

/** What each upstream received: every header, per request. */
const received = new Map<string, Headers[]>();

let gateway: Gateway;
beforeEach(async () => {
  received.clear();
  gateway = await Gateway.start(severalEnv());
  for (const url of [GITHUB_URL, LINEAR_URL]) {
    gateway.routes.set(url, async (request) => {
      received.set(url, [...(received.get(url) ?? []), request.headers]);
      const { id } = await request.json<{ id: unknown }>();
      return Response.json({ jsonrpc: '2.0', id, result: { from: url } });
    });
  }
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const bob = { login: { email: 'bob@example.com' } };

describe('several upstreams: discovery', () => {
  it.each([
    ['/github/mcp', GITHUB, 'GitHub'],
    ['/linear/mcp', LINEAR, 'MCP OAuth gateway'],
    ['/mcp', RESOURCE, 'MCP OAuth gateway'],
  ])('serves %s as its own protected resource, with its own metadata', async (path, resource, name) => {
    const challenge = await mcpRequest(gateway, undefined, undefined, path);
    expect(challenge.status).toBe(401);
    const metadataUrl = `${ORIGIN}/.well-known/oauth-protected-resource${path}`;
    expect(challenge.headers.get('WWW-Authenticate')).toContain(`resource_metadata="${metadataUrl}"`);

    const metadata = await (await gateway.fetch(metadataUrl)).json<Record<string, unknown>>();
    expect(metadata).toMatchObject({ resource, authorization_servers: [ORIGIN], scopes_supported: ['mcp'] });
    if (path !== '/linear/mcp') expect(metadata.resource_name).toBe(name);
  });

  it('keeps one authorization server at the root that knows every resource', async () => {
    const metadata = await (await gateway.fetch('/.well-known/oauth-authorization-server')).json<Record<string, unknown>>();
    expect(metadata).toMatchObject({ issuer: ORIGIN, authorization_endpoint: `${ORIGIN}/authorize`, token_endpoint: `${ORIGIN}/token` });
    expect(metadata.protected_resources).toEqual(expect.arrayContaining([RESOURCE, GITHUB, LINEAR]));
  });

  it('describes /mcp at the root metadata path while it is configured, and nothing when only named upstreams are', async () => {
    expect(await (await gateway.fetch('/.well-known/oauth-protected-resource')).json()).toMatchObject({ resource: RESOURCE });
    gateway.env = gatewayEnv({
      UPSTREAM_URL: undefined,
      UPSTREAM_TOKEN: undefined,
      UPSTREAMS: JSON.stringify(UPSTREAMS),
      GITHUB_TOKEN: GITHUB_PAT,
      LINEAR_API_KEY: LINEAR_KEY,
    });
    expect((await gateway.fetch('/.well-known/oauth-protected-resource')).status).toBe(404);
    expect((await mcpRequest(gateway, undefined)).status).toBe(404);
  });

  it('lists every connector URL on the landing page, and never an upstream host', async () => {
    const page = await (await gateway.fetch('/')).text();
    for (const url of [RESOURCE, GITHUB, LINEAR]) expect(page).toContain(url);
    expect(page).toContain('GitHub');
    expect(page).not.toContain('github-mcp.example');
    expect(page).not.toContain('linear-mcp.example');
  });
});

describe('several upstreams: audience isolation', () => {
  it('refuses a token issued for one upstream on every other, in every direction', async () => {
    const tokens = {
      [GITHUB]: (await signIn(gateway, { resource: GITHUB })).tokens.access_token,
      [LINEAR]: (await signIn(gateway, { resource: LINEAR })).tokens.access_token,
      [RESOURCE]: (await signIn(gateway)).tokens.access_token,
    };
    for (const [issuedFor, token] of Object.entries(tokens)) {
      for (const resource of [GITHUB, LINEAR, RESOURCE]) {
        const response = await mcpRequest(gateway, token, undefined, new URL(resource).pathname);
        if (resource === issuedFor) {
          expect(response.status, `${issuedFor} on itself`).toBe(200);
        } else {
          expect(response.status, `${issuedFor} on ${resource}`).toBe(401);
          expect(response.headers.get('WWW-Authenticate')).toContain('error="invalid_token"');
        }
      }
    }
  });

  it('issues tokens whose resource is the one asked for, and refreshes within it', async () => {
    const { client, tokens } = await signIn(gateway, { resource: GITHUB });
    const refreshed = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    expect(refreshed.status).toBe(200);
    const { access_token } = await refreshed.json<TokenResponse>();
    expect((await mcpRequest(gateway, access_token, undefined, '/github/mcp')).status).toBe(200);
    expect((await mcpRequest(gateway, access_token, undefined, '/linear/mcp')).status).toBe(401);
    const retarget = await tokenRequest(gateway, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: client.clientId,
      resource: LINEAR,
    });
    expect(retarget.status).toBe(400);
  });
});

describe('several upstreams: credentials', () => {
  it("sends each upstream its own credential, header, scheme and fixed headers, and nobody else's", async () => {
    const github = (await signIn(gateway, { resource: GITHUB })).tokens.access_token;
    const linear = (await signIn(gateway, { resource: LINEAR })).tokens.access_token;
    expect(await (await mcpRequest(gateway, github, undefined, '/github/mcp')).json()).toMatchObject({ result: { from: GITHUB_URL } });
    expect(await (await mcpRequest(gateway, linear, undefined, '/linear/mcp')).json()).toMatchObject({ result: { from: LINEAR_URL } });

    const [atGithub] = received.get(GITHUB_URL) ?? [];
    const [atLinear] = received.get(LINEAR_URL) ?? [];
    expect(atGithub?.get('Authorization')).toBe(`token ${GITHUB_PAT}`);
    expect(atGithub?.get('X-API-Key')).toBeNull();
    expect(atGithub?.get('X-Team')).toBeNull();
    expect(atLinear?.get('X-API-Key')).toBe(LINEAR_KEY);
    expect(atLinear?.get('Authorization')).toBeNull();
    expect(atLinear?.get('X-Team')).toBe('eng');
    // The single upstream at /mcp still gets UPSTREAM_TOKEN.
    expect(gateway.upstreamAuthorizations).toEqual([]);
    expect((await mcpRequest(gateway, (await signIn(gateway)).tokens.access_token)).status).toBe(200);
    expect(gateway.upstreamAuthorizations).toEqual([`Bearer ${PAT}`]);
  });

  it('names the upstream in the log line', async () => {
    const logs = vi.spyOn(console, 'log').mockImplementation(() => {});
    const token = (await signIn(gateway, { resource: GITHUB })).tokens.access_token;
    await mcpRequest(gateway, token, undefined, '/github/mcp');
    const lines = logs.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
    expect(lines.filter((l) => l.event === 'mcp_proxy')).toEqual([expect.objectContaining({ upstream: 'github', path: '/github/mcp', status: 200 })]);
    expect(JSON.stringify(lines)).not.toContain(GITHUB_PAT);
  });
});

describe('several upstreams: consent and allowlists', () => {
  it('names the upstream on the consent page, and remembers an approval for that upstream only', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const first = await authorize(gateway, browser, client, { resource: GITHUB });
    const page = await first.response.text();
    expect(page).toContain('GitHub');
    expect(page).not.toContain('github-mcp.example');
    const approved = await decide(gateway, browser, await consentHandle(new Response(page)));
    expect(approved.status).toBe(302);

    // The same client and browser: GitHub again goes straight to Access, Linear asks first.
    expect((await authorize(gateway, browser, client, { resource: GITHUB })).response.status).toBe(302);
    const linear = await authorize(gateway, browser, client, { resource: LINEAR });
    expect(linear.response.status).toBe(200);
    expect(await linear.response.text()).toContain('linear');
  });

  it('refuses a person its allowedEmails leave out at login, while the other upstreams let them in', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { response } = await authorize(gateway, browser, client, { resource: LINEAR });
    const toAccess = await decide(gateway, browser, await consentHandle(response));
    const back = await gateway.fetch(`/callback?${gateway.access.login(toAccess.headers.get('Location') ?? '', bob.login)}`, {
      headers: browser.headers(),
    });
    expect(back.status).toBe(403);
    const page = await back.text();
    expect(page).toContain('bob@example.com is not allowed to use linear');

    const github = (await signIn(gateway, { ...bob, resource: GITHUB })).tokens.access_token;
    expect((await mcpRequest(gateway, github, undefined, '/github/mcp')).status).toBe(200);
  });

  it('answers -32001 on that upstream to someone its allowedEmails no longer name, and nowhere else', async () => {
    const linear = (await signIn(gateway, { resource: LINEAR })).tokens.access_token;
    const github = (await signIn(gateway, { resource: GITHUB })).tokens.access_token;
    gateway.env = severalEnv({ ...UPSTREAMS, linear: { ...UPSTREAMS.linear, allowedEmails: '@example.org' } });

    const refused = await mcpRequest(gateway, linear, undefined, '/linear/mcp');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: -32001 }, id: null });
    expect(refused.headers.get('WWW-Authenticate')).toBeNull();
    expect((await mcpRequest(gateway, github, undefined, '/github/mcp')).status).toBe(200);
  });
});

describe('several upstreams: health', () => {
  it('lists a wrong upstream setting by name only', async () => {
    gateway.env = severalEnv({ ...UPSTREAMS, github: { ...UPSTREAMS.github, url: 'http://github-mcp.example/mcp' } });
    const health = await gateway.fetch('/health');
    expect(health.status).toBe(503);
    const body = await health.text();
    expect(JSON.parse(body)).toEqual({ ok: false, problems: ['UPSTREAMS.github.url'] });
    expect(body).not.toContain('github-mcp.example');
  });
});
