import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Browser } from './fixtures/browser';
import { authorize, consentHandle, decide, Gateway, gatewayEnv, mcpRequest, ORIGIN, RESOURCE, registerClient, signIn, tokenRequest } from './fixtures/gateway';
import { openConnections } from './fixtures/own-tokens';

/** issue #21: an aggregate is its own protected resource, with its own consent, sign-in and place on /connections. */

const KANBAN_URL = 'https://kanban-mcp.example/mcp';
const LINEAR_URL = 'https://linear-mcp.example/mcp';
const KANBAN = `${ORIGIN}/kanban/mcp`;
const WORK = `${ORIGIN}/work/mcp`;

function aggregateEnv(upstreams: Record<string, object> = {}, aggregates: Record<string, object> = {}, extra: Record<string, string> = {}) {
  return gatewayEnv({
    UPSTREAMS: JSON.stringify({
      kanban: { url: KANBAN_URL, title: 'Kanban <board>', token: 'KANBAN_TOKEN' },
      linear: { url: LINEAR_URL, title: 'Linear & co', token: 'LINEAR_TOKEN', allowedEmails: 'alice@example.com' },
      ...upstreams,
    }),
    KANBAN_TOKEN: 'kanban_SECRET_shared',
    LINEAR_TOKEN: 'linear_SECRET_shared',
    AGGREGATES: JSON.stringify({ work: { title: 'Work <tools>', upstreams: ['kanban', 'linear'] }, ...aggregates }),
    ...extra,
  });
}

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start(aggregateEnv());
  for (const url of [KANBAN_URL, LINEAR_URL]) {
    gateway.routes.set(url, async (request) => Response.json({ jsonrpc: '2.0', id: (await request.json<{ id: unknown }>()).id, result: {} }));
  }
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const bob = { email: 'bob@example.com' };
const carol = { email: 'carol@example.com' };

describe('issue #21: an aggregate as a protected resource', () => {
  it('answers 401 whose resource_metadata names its own RFC 9728 document, with its title', async () => {
    const challenge = await mcpRequest(gateway, undefined, undefined, '/work/mcp');
    expect(challenge.status).toBe(401);
    const metadataUrl = `${ORIGIN}/.well-known/oauth-protected-resource/work/mcp`;
    expect(challenge.headers.get('WWW-Authenticate')).toContain(`resource_metadata="${metadataUrl}"`);
    const metadata = await (await gateway.fetch(metadataUrl)).json<Record<string, unknown>>();
    expect(metadata).toMatchObject({ resource: WORK, authorization_servers: [ORIGIN], resource_name: 'Work <tools>', scopes_supported: ['mcp'] });
    const server = await (await gateway.fetch('/.well-known/oauth-authorization-server')).json<Record<string, unknown>>();
    expect(server.protected_resources).toEqual(expect.arrayContaining([RESOURCE, KANBAN, WORK]));
  });

  it('refuses a token for one of its upstreams at the aggregate, and the aggregate’s token at that upstream', async () => {
    const kanban = (await signIn(gateway, { resource: KANBAN })).tokens.access_token;
    const work = (await signIn(gateway, { resource: WORK })).tokens.access_token;
    expect((await mcpRequest(gateway, kanban, undefined, '/kanban/mcp')).status).toBe(200);

    const atWork = await mcpRequest(gateway, kanban, undefined, '/work/mcp');
    expect(atWork.status).toBe(401);
    expect(atWork.headers.get('WWW-Authenticate')).toContain('error="invalid_token"');
    for (const path of ['/kanban/mcp', '/linear/mcp', '/mcp']) {
      const elsewhere = await mcpRequest(gateway, work, undefined, path);
      expect(elsewhere.status, path).toBe(401);
      expect(elsewhere.headers.get('WWW-Authenticate')).toContain('error="invalid_token"');
    }
    // Its own token passes the resource server (whatever the aggregate's server then answers).
    const own = await mcpRequest(gateway, work, undefined, '/work/mcp');
    expect(own.status).not.toBe(401);
    expect(own.headers.get('WWW-Authenticate')).toBeNull();
  });

  it('lists the aggregate on the landing page with its connector URL and upstreams, escaped', async () => {
    const page = await (await gateway.fetch('/')).text();
    expect(page).toContain(`<code>${WORK}</code>`);
    expect(page).toContain('Work &#60;tools&#62;');
    expect(page).toContain('Kanban &#60;board&#62;, Linear &#38; co');
    expect(page).not.toContain('<tools>');
    expect(page).not.toContain('kanban-mcp.example');
  });
});

describe('issue #21: consent for an aggregate', () => {
  it('names the aggregate and every upstream it reaches, escaped, and asks again for each client', async () => {
    const browser = new Browser();
    const client = await registerClient(gateway);
    const { response } = await authorize(gateway, browser, client, { resource: WORK });
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('to Work &#60;tools&#62;?');
    expect(page).toMatch(/Servers it reaches<\/dt><dd><div>Kanban &#60;board&#62;<\/div><div>Linear &#38; co<\/div><\/dd>/);
    expect(page).not.toContain('<board>');
    expect(page).not.toContain('kanban-mcp.example');
    expect((await decide(gateway, browser, await consentHandle(new Response(page)))).status).toBe(302);

    // Remembered for this client and resource only: another client, or a direct upstream, asks first.
    expect((await authorize(gateway, browser, client, { resource: WORK })).response.status).toBe(302);
    expect((await authorize(gateway, browser, await registerClient(gateway), { resource: WORK })).response.status).toBe(200);
    const direct = await authorize(gateway, browser, client, { resource: KANBAN });
    expect(direct.response.status).toBe(200);
    expect(await direct.response.text()).not.toContain('Servers it reaches');
  });

  it('asks again once the aggregate reaches other upstreams than the person approved', async () => {
    const browser = new Browser();
    const client = await registerClient(gateway);
    await decide(gateway, browser, await consentHandle((await authorize(gateway, browser, client, { resource: WORK })).response));
    expect((await authorize(gateway, browser, client, { resource: WORK })).response.status).toBe(302);

    gateway.env = aggregateEnv({ wiki: { url: 'https://wiki-mcp.example/mcp', token: 'KANBAN_TOKEN' } }, { work: { upstreams: ['kanban', 'linear', 'wiki'] } });
    const asked = await authorize(gateway, browser, client, { resource: WORK });
    expect(asked.response.status).toBe(200);
    expect(await asked.response.text()).toContain('<div>wiki</div>');
  });

  it('records the aggregate’s name in the consent audit events', async () => {
    const logs = vi.spyOn(console, 'log').mockImplementation(() => {});
    const browser = new Browser();
    const client = await registerClient(gateway);
    await decide(gateway, browser, await consentHandle((await authorize(gateway, browser, client, { resource: WORK })).response), 'deny');
    await decide(gateway, browser, await consentHandle((await authorize(gateway, browser, client, { resource: WORK })).response));
    const events = logs.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>).filter((l) => String(l.event).startsWith('consent_'));
    expect(events).toEqual([
      expect.objectContaining({ event: 'consent_denied', upstream: 'work' }),
      expect.objectContaining({ event: 'consent_approved', upstream: 'work' }),
    ]);
  });
});

describe('issue #21: who may sign in to an aggregate, and keep refreshing', () => {
  /** Up to what the callback answers, for this person. */
  async function loginTo(resource: string, login: { email: string }) {
    const browser = new Browser();
    const client = await registerClient(gateway);
    const { response } = await authorize(gateway, browser, client, { resource });
    const toAccess = await decide(gateway, browser, await consentHandle(response));
    return gateway.fetch(`/callback?${gateway.access.login(toAccess.headers.get('Location') ?? '', login)}`, { headers: browser.headers() });
  }

  it('lets in someone one of its upstreams admits, though another leaves them out', async () => {
    expect((await loginTo(WORK, bob)).status).toBe(302);
    expect((await loginTo(`${ORIGIN}/linear/mcp`, bob)).status).toBe(403);
  });

  it('refuses, as its upstreams would, someone none of them admits', async () => {
    gateway.env = aggregateEnv({ kanban: { url: KANBAN_URL, token: 'KANBAN_TOKEN', allowedEmails: 'alice@example.com' } });
    const refused = await loginTo(WORK, bob);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('Work &#60;tools&#62;');
    gateway.env = aggregateEnv({}, {}, { ALLOWED_EMAILS: 'alice@example.com' });
    expect((await loginTo(WORK, bob)).status).toBe(403);
  });

  it('says "no credential" for someone one upstream admits but holds no token for, while the other refuses them', async () => {
    gateway.env = aggregateEnv(
      { kanban: { url: KANBAN_URL, title: 'Kanban', userTokens: 'KANBAN_USER_TOKENS' } },
      {},
      { KANBAN_USER_TOKENS: JSON.stringify({ 'alice@example.com': 'kanban_SECRET_alice' }) },
    );
    const refused = await loginTo(WORK, bob);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('has no credential for Work &#60;tools&#62;');
    expect((await loginTo(WORK, { email: 'alice@example.com' })).status).toBe(302);
  });

  it('stops refreshing once no upstream in it admits the person any more', async () => {
    const { client, tokens } = await signIn(gateway, { resource: WORK, login: bob });
    const refresh = (refreshToken: string) => tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.clientId });
    const first = await refresh(tokens.refresh_token);
    expect(first.status).toBe(200);

    gateway.env = aggregateEnv({ kanban: { url: KANBAN_URL, token: 'KANBAN_TOKEN', allowedEmails: 'alice@example.com' } });
    const refused = await refresh((await first.json<{ refresh_token: string }>()).refresh_token);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('stops refreshing once ALLOWED_EMAILS leaves the person out, though the upstreams have no lists', async () => {
    gateway.env = aggregateEnv({ linear: { url: LINEAR_URL, token: 'LINEAR_TOKEN' } });
    const { client, tokens } = await signIn(gateway, { resource: WORK, login: carol });
    gateway.env = aggregateEnv({ linear: { url: LINEAR_URL, token: 'LINEAR_TOKEN' } }, {}, { ALLOWED_EMAILS: 'alice@example.com' });
    const refused = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    expect(refused.status).toBe(400);
  });
});

describe('issue #21: /connections lists an aggregate’s apps', () => {
  it('labels the grant with the aggregate’s title and names its upstreams, and disconnecting it ends its tokens', async () => {
    const logs = vi.spyOn(console, 'log').mockImplementation(() => {});
    const { tokens } = await signIn(gateway, { resource: WORK, login: bob });
    const { browser, page } = await openConnections(gateway, bob);
    const html = await page.text();
    const section = html.slice(html.indexOf('<h2>Work &#60;tools&#62;</h2>'));
    expect(section).toContain(`<code>${WORK}</code>`);
    expect(section).toContain('Test MCP Client');
    expect(section).toContain('<strong>Kanban &#60;board&#62;</strong>, <strong>Linear &#38; co</strong>');
    expect(html).not.toContain('<tools>');

    const grant = /name="grant" value="([^"]+)"/.exec(section)?.[1] ?? '';
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const done = browser.receive(
      await gateway.fetch('/connections', {
        method: 'POST',
        headers: browser.headers({ 'Content-Type': 'application/x-www-form-urlencoded', Origin: ORIGIN }),
        body: new URLSearchParams({ csrf, action: 'disconnect', grant }),
        redirect: 'manual',
      }),
    );
    expect(done.status).toBe(303);
    expect((await mcpRequest(gateway, tokens.access_token, undefined, '/work/mcp')).status).toBe(401);
    const events = logs.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
    expect(events.filter((e) => e.event === 'app_disconnected')).toEqual([expect.objectContaining({ upstream: 'work' })]);
  });
});
