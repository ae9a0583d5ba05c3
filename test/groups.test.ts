import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';
import { groupsFromClaims } from '../src/sign-in';
import type { LoginOptions } from './fixtures/access';
import { Browser } from './fixtures/browser';
import {
  authorize,
  callback,
  consentHandle,
  decide,
  Gateway,
  gatewayEnv,
  mcpRequest,
  ORIGIN,
  PAT,
  registerClient,
  signIn,
  storedGrants,
  tokenRequest,
} from './fixtures/gateway';
import { openConnections, ownTokensEnv } from './fixtures/own-tokens';
import { callProxy, captureLogs, proxyConfig, proxyEnv, rpcPost } from './fixtures/proxy';

/**
 * Issue #19, groups: the `groups` claim Access sends when ACCESS_SCOPES asks for it, and every
 * list that names people (ALLOWED_EMAILS, an upstream's `allowedEmails`, `toolsFor`,
 * ADMIN_EMAILS) naming groups as `group:<name>`.
 */

const WITH_GROUPS = 'openid email profile groups';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

/** Consent and Access for `resource`, up to what the gateway answers Access's callback with. */
async function callbackFor(login: LoginOptions, resource = `${ORIGIN}/mcp`): Promise<Response> {
  const client = await registerClient(gateway);
  const browser = new Browser();
  const { response } = await authorize(gateway, browser, client, { resource });
  const toAccess = response.status === 302 ? response : await decide(gateway, browser, await consentHandle(response));
  expect(toAccess.status).toBe(302);
  return callback(gateway, browser, gateway.access.login(toAccess.headers.get('Location') ?? '', login));
}

describe('issue #19: ACCESS_SCOPES and the groups claim at sign-in', () => {
  it('asks Access for openid email profile by default, and for what ACCESS_SCOPES names when set', async () => {
    gateway = await Gateway.start(gatewayEnv());
    await signIn(gateway);
    gateway.env = gatewayEnv({ ACCESS_SCOPES: ' openid  email profile groups offline_access ' });
    await signIn(gateway);
    expect(gateway.access.scopes).toEqual(['openid email profile', 'openid email profile groups offline_access']);
  });

  it('lets in a person whose ID token names an allowed group, and refuses one whose ID token has no groups', async () => {
    gateway = await Gateway.start(gatewayEnv({ ACCESS_SCOPES: WITH_GROUPS, ALLOWED_EMAILS: 'group:Writers,carol@example.com' }));
    const alice = await signIn(gateway, { login: { email: 'alice@example.com', groups: ['readers', 'Writers'] } });
    expect((await mcpRequest(gateway, alice.tokens.access_token)).status).toBe(200);

    // No claim at all is no groups; and the name is matched exactly, case included.
    for (const login of [{ email: 'bob@example.com' }, { email: 'dan@example.com', groups: ['writers'] }]) {
      const refused = await callbackFor(login);
      expect(refused.status).toBe(403);
      expect(await refused.text()).toContain('Not allowed');
    }
    expect(await storedGrants()).toBe(1);
  });

  it('reads no groups when ACCESS_SCOPES does not ask for them', async () => {
    gateway = await Gateway.start(gatewayEnv({ ALLOWED_EMAILS: 'group:writers' }));
    expect((await callbackFor({ groups: ['writers'] })).status).toBe(403);
  });

  it('refuses a sign-in whose groups claim is malformed with a page that says so, and stores no grant', async () => {
    gateway = await Gateway.start(gatewayEnv({ ACCESS_SCOPES: WITH_GROUPS }));
    const logs = captureLogs();
    const malformed = ['writers', { writers: true }, ['writers', 7], ['writers', ''], ['x'.repeat(300)], Array.from({ length: 1001 }, (_, i) => `group-${i}`)];
    for (const groups of malformed) {
      const page = await callbackFor({ groups });
      expect(page.status).toBe(502);
      const html = await page.text();
      expect(html).toContain('groups');
      expect(html).toMatch(/Reference: <code>[0-9a-f-]{36}<\/code>/);
    }
    expect(await storedGrants()).toBe(0);
    const reasons = logs.parsed().filter((l) => l.event === 'page_error');
    expect(reasons).toHaveLength(malformed.length);
    expect(reasons.every((l) => String(l.reason).includes('"groups"'))).toBe(true);
  });
});

describe('issue #19: groupsFromClaims, shared with the refresh at Access', () => {
  it('reads a missing claim as no groups and keeps the order Access sent, without repeats', () => {
    expect(groupsFromClaims({})).toEqual({ groups: [] });
    expect(groupsFromClaims(undefined)).toEqual({ groups: [] });
    expect(groupsFromClaims({ groups: ['b', 'a', 'b'] })).toEqual({ groups: ['b', 'a'] });
  });

  it('refuses anything but an array of at most 1000 short names', () => {
    for (const groups of [null, 'a', [1], ['a\nb'], ['x'.repeat(257)], Array.from({ length: 1001 }, (_, i) => `g${i}`)]) {
      expect(groupsFromClaims({ groups })).toMatchObject({ refusal: 'malformed_groups' });
    }
  });
});

describe('issue #19: group entries in the lists that name people', () => {
  it('admits a group member to an upstream whose allowedEmails names the group, and nobody else, at login and refresh', async () => {
    const env = gatewayEnv({
      ACCESS_SCOPES: WITH_GROUPS,
      UPSTREAMS: JSON.stringify({ team: { url: 'https://upstream.example/mcp', token: 'TEAM_TOKEN', allowedEmails: ['group:team', 'carol@example.com'] } }),
      TEAM_TOKEN: PAT,
    });
    gateway = await Gateway.start(env);
    const resource = `${ORIGIN}/team/mcp`;
    const alice = await signIn(gateway, { resource, login: { email: 'alice@example.com', groups: ['team'] } });
    expect((await mcpRequest(gateway, alice.tokens.access_token, undefined, '/team/mcp')).status).toBe(200);
    // The groups live in the grant: its refresh still admits her.
    const refresh = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: alice.tokens.refresh_token, client_id: alice.client.clientId });
    expect(refresh.status).toBe(200);
    expect((await mcpRequest(gateway, (await refresh.json<{ access_token: string }>()).access_token, undefined, '/team/mcp')).status).toBe(200);
    expect((await callbackFor({ email: 'bob@example.com', groups: ['other'] }, resource)).status).toBe(403);
    // The single /mcp upstream is not narrowed: bob may use it.
    expect((await callbackFor({ email: 'bob@example.com', groups: ['other'] })).status).toBe(302);
  });

  it('makes a member of an ADMIN_EMAILS group an admin of /connections', async () => {
    gateway = await Gateway.start(ownTokensEnv({ ACCESS_SCOPES: WITH_GROUPS, ADMIN_EMAILS: 'group:ops' }));
    await signIn(gateway, { login: { email: 'carol@example.com' } });
    const ops = await openConnections(gateway, { email: 'olga@example.com', groups: ['ops'] });
    expect(await ops.page.text()).toContain('Everyone (admin)');
    const dev = await openConnections(gateway, { email: 'dev@example.com', groups: ['dev'] });
    expect(await dev.page.text()).not.toContain('Everyone (admin)');
  });

  it('shows a person their groups on /connections, and an admin everyone\u2019s, escaped', async () => {
    gateway = await Gateway.start(gatewayEnv({ ACCESS_SCOPES: WITH_GROUPS, ADMIN_EMAILS: 'admin@example.com' }));
    await signIn(gateway, { login: { email: 'bob@example.com', groups: ['writers', '<b>team</b>'] } });
    const bob = await (await openConnections(gateway, { email: 'bob@example.com', groups: ['writers', '<b>team</b>'] })).page.text();
    expect(bob).toMatch(/Your groups[^<]*:[^<]*<code>writers<\/code>, <code>&#60;b&#62;team&#60;\/b&#62;<\/code>/);
    expect(bob).not.toContain('<b>team</b>');
    const carol = await (await openConnections(gateway, { email: 'carol@example.com' })).page.text();
    expect(carol).toContain('Cloudflare Access sent no groups for you');

    const admin = await (await openConnections(gateway, { email: 'admin@example.com' })).page.text();
    const bobSection = admin.slice(admin.indexOf('<h2>bob@example.com</h2>'));
    expect(bobSection).toMatch(/Groups[^<]*<code>writers<\/code>, <code>&#60;b&#62;team&#60;\/b&#62;<\/code>/);
    expect(admin).not.toContain('<b>team</b>');
  });
});

describe('issue #19: toolsFor with groups', () => {
  const list = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
  const tools = async (config: ReturnType<typeof proxyConfig>, email: string, groups?: string[]) => {
    const answer = await (await callProxy({ config, email, ...(groups ? { groups } : {}), path: '/mcp', init: rpcPost(list) })).json<{
      result: { tools: Array<{ name: string }> };
    }>();
    return answer.result.tools.map((t) => t.name);
  };
  // The /tools/json/ upstream's first page: get_issue, search_code, create_issue, delete_file, list_commits.
  const policyConfig = () =>
    proxyConfig('/tools/json/mcp', {
      UPSTREAM_TOOLS: JSON.stringify({ allow: ['get_issue'] }),
      UPSTREAM_TOOLS_FOR: JSON.stringify({
        '@example.com': { allow: ['search_code'] },
        'group:maintainers': { deny: ['delete_*'] },
        'group:triage': { allow: ['get_issue', 'create_issue'] },
        'lead@example.com': { allow: ['list_commits'] },
      }),
    });

  it('gives an email entry over a group entry, and a group entry over a domain entry', async () => {
    const config = policyConfig();
    expect(await tools(config, 'lead@example.com', ['maintainers'])).toEqual(['list_commits']);
    expect(await tools(config, 'alice@example.com', ['maintainers'])).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);
    expect(await tools(config, 'alice@example.com', ['readers'])).toEqual(['search_code']);
    expect(await tools(config, 'alice@example.org', ['triage'])).toEqual(['get_issue', 'create_issue']);
    expect(await tools(config, 'alice@example.org')).toEqual(['get_issue']);
  });

  it('gives a person in two groups the entry of the group listed first in the configuration, whatever order Access sent', async () => {
    const config = policyConfig();
    expect(await tools(config, 'alice@example.org', ['triage', 'maintainers'])).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);
    expect(await tools(config, 'alice@example.org', ['maintainers', 'triage'])).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);
  });
});

describe('issue #19: configuration of people and scopes', () => {
  const problems = (overrides: Record<string, unknown>) => {
    try {
      loadConfig(proxyEnv('/mcp', overrides));
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems.map((p) => p.variable);
    }
  };

  it('accepts group entries in every list that names people, keeping their case', () => {
    const config = loadConfig(
      proxyEnv('/mcp', {
        ALLOWED_EMAILS: 'alice@example.com, @example.org, group:Eng Team',
        ADMIN_EMAILS: 'group:ops',
        UPSTREAM_TOOLS_FOR: JSON.stringify({ 'group:Writers': { deny: ['delete_*'] } }),
        UPSTREAMS: JSON.stringify({ team: { url: 'https://team.example/mcp', token: 'TEAM_TOKEN', allowedEmails: ['group:team'] } }),
        TEAM_TOKEN: 'team-token',
      }),
    );
    expect([...(config.allowedEmails?.groups ?? [])]).toEqual(['Eng Team']);
    expect([...(config.adminEmails?.groups ?? [])]).toEqual(['ops']);
    expect(config.upstreams[0]?.tools?.groups.map(([name]) => name)).toEqual(['Writers']);
    expect([...(config.upstreams[1]?.allowedEmails?.groups ?? [])]).toEqual(['team']);
  });

  it('names the variable or field of every bad entry, and says what an entry may be', () => {
    expect(() => loadConfig(proxyEnv('/mcp', { ALLOWED_EMAILS: 'group:' }))).toThrow(/ALLOWED_EMAILS: [^;]*group:<name>/);
    expect(problems({ ALLOWED_EMAILS: 'group:' })).toEqual(['ALLOWED_EMAILS']);
    expect(problems({ ADMIN_EMAILS: 'group:ops,Group:dev' })).toEqual(['ADMIN_EMAILS']);
    expect(problems({ UPSTREAM_TOOLS_FOR: JSON.stringify({ 'group:': { deny: ['x'] } }) })).toEqual(['UPSTREAM_TOOLS_FOR']);
    expect(
      problems({ UPSTREAMS: JSON.stringify({ team: { url: 'https://team.example/mcp', token: 'T', allowedEmails: ['group:a\u0007'] } }), T: 'team-token' }),
    ).toEqual(['UPSTREAMS.team.allowedEmails']);
  });

  it('requires openid in ACCESS_SCOPES and scope tokens of visible characters', () => {
    expect(problems({ ACCESS_SCOPES: 'openid email profile groups offline_access' })).toEqual([]);
    expect(problems({ ACCESS_SCOPES: 'email profile' })).toEqual(['ACCESS_SCOPES']);
    expect(problems({ ACCESS_SCOPES: 'openid "groups"' })).toEqual(['ACCESS_SCOPES']);
    expect(problems({ ACCESS_SCOPES: 'openid gr\u00f6ups' })).toEqual(['ACCESS_SCOPES']);
  });
});
