import { env, reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { base64url, openSealed, sealText } from '../src/lib';
import { Browser } from './fixtures/browser';
import { Gateway, mcpRequest, ORIGIN, signIn } from './fixtures/gateway';
import { recordingKvWrites } from './fixtures/kv-writes';
import { ALICE_TOKEN, BOB_TOKEN, connectionsPost, csrfOf, NotesUpstream, openConnections, ownTokensEnv, signInWithOwnToken } from './fixtures/own-tokens';

let gateway: Gateway;
let notes: NotesUpstream;
beforeEach(async () => {
  // KV outlives a test here: start each with nobody's tokens or grants stored.
  await reset();
  gateway = await Gateway.start(ownTokensEnv());
  notes = new NotesUpstream();
  notes.install(gateway);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const ping = (token: string, path = '/notes/mcp') => mcpRequest(gateway, token, undefined, path);

describe('/connections: signing in', () => {
  it('sends a browser without a session to Access, and never accepts an MCP access token instead', async () => {
    const { tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    const response = await gateway.fetch('/connections', { headers: { Authorization: `Bearer ${tokens.access_token}` }, redirect: 'manual' });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('Location') ?? '');
    expect(location.searchParams.get('redirect_uri')).toBe(`${ORIGIN}/callback`);
    expect(location.searchParams.get('state')).toBeTruthy();
    expect(response.headers.getSetCookie().join()).toMatch(/__Host-connections-login=.*Max-Age=600/);
  });

  it('sends a /connections sign-in that comes back without its login cookie to /connections again, and an app login to the app', async () => {
    // Opened in another browser, or after the browser dropped the ten-minute cookie: /callback must
    // still know which sign-in it was, to say where to start again.
    const start = await gateway.fetch('/connections', { redirect: 'manual' });
    const connections = await gateway.fetch(`/callback?${gateway.access.login(start.headers.get('Location') ?? '')}`, { redirect: 'manual' });
    expect(connections.status).toBe(400);
    expect(connections.headers.getSetCookie().join()).toMatch(/__Host-connections-login=; Max-Age=0/);
    const connectionsPage = await connections.text();
    expect(connectionsPage).toContain('This sign-in link no longer works');
    expect(connectionsPage).toContain('Open /connections and try again.');

    const app = await gateway.fetch(`/callback?code=c&state=${crypto.randomUUID()}`, { redirect: 'manual' });
    expect(app.status).toBe(400);
    const appPage = await app.text();
    expect(appPage).toContain('This sign-in link no longer works');
    expect(appPage).toContain('Go back to your app and connect again.');
  });

  it('starts a short-lived __Host- session after the Access sign-in', async () => {
    const browser = new Browser();
    const start = browser.receive(await gateway.fetch('/connections', { redirect: 'manual' }));
    const back = await gateway.fetch(`/callback?${gateway.access.login(start.headers.get('Location') ?? '')}`, {
      headers: browser.headers(),
      redirect: 'manual',
    });
    expect(back.status).toBe(303);
    const session = back.headers.getSetCookie().find((c) => c.startsWith('__Host-connections='));
    expect(session).toMatch(/Max-Age=1800; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
  });

  // issue #20: an admin who opens the audit trail signed out lands on it after signing in.
  it('returns a sign-in started on /connections/audit there, and any other to /connections, whatever the state claims', async () => {
    const signInFrom = async (path: string, bend?: (pending: Record<string, unknown>) => Record<string, unknown>) => {
      const browser = new Browser();
      const start = browser.receive(await gateway.fetch(path, { redirect: 'manual' }));
      expect(start.status).toBe(302);
      if (bend) {
        // A login cookie sealed with the gateway's own key but naming another page: the path is checked on the way back.
        const [name, info] = ['__Host-connections-login', 'mcp-oauth-gateway connections login v1'];
        const aad = new TextEncoder().encode(name);
        const secret = gateway.env.COOKIE_ENCRYPTION_KEY;
        const sealed = /__Host-connections-login=([^;]+)/.exec(start.headers.getSetCookie().join())?.[1] ?? '';
        const pending = JSON.parse((await openSealed(secret, info, aad, sealed)) ?? '{}');
        const forged = await sealText(secret, info, aad, JSON.stringify(bend(pending)));
        browser.receive(new Response(null, { headers: { 'Set-Cookie': `${name}=${forged}; Path=/` } }));
      }
      const query = gateway.access.login(start.headers.get('Location') ?? '', { email: 'admin@example.com' });
      const back = await gateway.fetch(`/callback?${query}`, { headers: browser.headers(), redirect: 'manual' });
      expect(back.status).toBe(303);
      return back.headers.get('Location');
    };
    expect(await signInFrom('/connections/audit?person=bob%40example.com')).toBe('/connections/audit');
    expect(await signInFrom('/connections')).toBe('/connections');
    for (const returnTo of ['https://evil.example/', '//evil.example', '/connections/../token', '/health']) {
      expect(await signInFrom('/connections/audit', (pending) => ({ ...pending, returnTo })), returnTo).toBe('/connections');
    }
  });

  it('refuses a sign-in state from another browser, or used twice', async () => {
    const browser = new Browser();
    const start = browser.receive(await gateway.fetch('/connections', { redirect: 'manual' }));
    // What a replaying attacker would keep: the login cookie, past the answer that clears it.
    const kept = browser.headers();
    const query = gateway.access.login(start.headers.get('Location') ?? '');
    expect((await gateway.fetch(`/callback?${query}`, { redirect: 'manual' })).status).toBe(400);
    expect(browser.receive(await gateway.fetch(`/callback?${query}`, { headers: browser.headers(), redirect: 'manual' })).status).toBe(303);
    expect((await gateway.fetch(`/callback?${query}`, { headers: browser.headers(), redirect: 'manual' })).status).toBe(400);
    // Access's code is single-use: the kept cookie with the same callback starts no session.
    const replay = await gateway.fetch(`/callback?${query}`, { headers: kept, redirect: 'manual' });
    expect(replay.status).not.toBe(303);
    expect(replay.headers.getSetCookie().join()).not.toMatch(/__Host-connections=[^;]/);
  });

  it('lets nobody in whom ALLOWED_EMAILS leaves out, and ends a session when someone is removed', async () => {
    gateway.env = ownTokensEnv({ ALLOWED_EMAILS: 'alice@example.com' });
    const mallory = await openConnections(gateway, { email: 'mallory@example.net' });
    expect(mallory.page.status).toBe(403);

    const alice = await openConnections(gateway);
    expect(alice.page.status).toBe(200);
    gateway.env = ownTokensEnv({ ALLOWED_EMAILS: 'bob@example.com' });
    expect((await gateway.fetch('/connections', { headers: alice.browser.headers(), redirect: 'manual' })).status).toBe(302);
  });
});

describe('issue #16: signing in to /connections keeps its state in a sealed cookie, not in KV', () => {
  const startLogin = async (browser = new Browser()) => {
    const start = browser.receive(await gateway.fetch('/connections', { headers: browser.headers(), redirect: 'manual' }));
    expect(start.status).toBe(302);
    return { browser, location: start.headers.get('Location') ?? '' };
  };
  const callback = (query: URLSearchParams, headers: HeadersInit) => gateway.fetch(`/callback?${query}`, { headers, redirect: 'manual' });
  const loginCookie = (browser: Browser) => /__Host-connections-login=([^;]+)/.exec(browser.headers().get('Cookie') ?? '')?.[1] ?? '';
  const tokenRequests = () => gateway.access.requests.filter((r) => r.startsWith('POST')).length;
  const expectRefused = async (response: Response) => {
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('This sign-in link no longer works');
    expect(response.headers.getSetCookie().join()).toMatch(/__Host-connections-login=; Max-Age=0/);
    expect(response.headers.getSetCookie().join()).not.toMatch(/__Host-connections=[^;]/);
  };

  it('makes no KV write for 50 anonymous visits, and the sign-in still completes without one', async () => {
    const { kv, writes } = recordingKvWrites(env.OAUTH_KV);
    gateway.env = { ...gateway.env, OAUTH_KV: kv };
    let login = await startLogin();
    for (let i = 1; i < 50; i++) login = await startLogin();
    expect(writes).toEqual([]);

    const back = login.browser.receive(await callback(gateway.access.login(login.location), login.browser.headers()));
    expect(back.status).toBe(303);
    expect(login.browser.cookieNames()).toEqual(['__Host-connections']);
    expect((await gateway.fetch('/connections', { headers: login.browser.headers() })).status).toBe(200);
    expect(writes).toEqual([]);
  });

  it("refuses another browser's sign-in, and a login cookie sealed by another deployment", async () => {
    const alice = await startLogin();
    const mallory = await startLogin();
    // Login CSRF: Mallory's finished sign-in opened in Alice's browser does not sign Alice in as Mallory.
    await expectRefused(await callback(gateway.access.login(mallory.location, { email: 'mallory@example.net' }), alice.browser.headers()));

    const elsewhere = await startLogin();
    gateway.env = ownTokensEnv({ COOKIE_ENCRYPTION_KEY: 'another-deployment-cookie-secret-0123456789' });
    await expectRefused(await callback(gateway.access.login(elsewhere.location), elsewhere.browser.headers()));
    expect(tokenRequests()).toBe(0);
  });

  it('refuses a tampered login cookie, or one made from the sign-in URL alone', async () => {
    const { browser, location } = await startLogin();
    const query = gateway.access.login(location);
    const value = loginCookie(browser);
    const middle = Math.floor(value.length * 0.75);
    const tampered = `${value.slice(0, middle)}${value[middle] === 'A' ? 'B' : 'A'}${value.slice(middle + 1)}`;
    await expectRefused(await callback(query, { Cookie: `__Host-connections-login=${tampered}` }));
    const state = new TextEncoder().encode(query.get('state') ?? '');
    for (const forged of [query.get('state') ?? '', base64url(await crypto.subtle.digest('SHA-256', state))]) {
      await expectRefused(await callback(query, { Cookie: `__Host-connections-login=${forged}` }));
    }
    expect(tokenRequests()).toBe(0);
    expect((await callback(query, browser.headers())).status).toBe(303);
  });

  it('refuses a login cookie ten minutes after it was sealed, even from a browser that kept it', async () => {
    const late = await startLogin();
    const query = gateway.access.login(late.location);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 601_000);
    // The plain Browser ignores Max-Age: the gateway must count from the sealed time itself.
    await expectRefused(await callback(query, late.browser.headers()));
    expect(tokenRequests()).toBe(0);

    const inTime = await startLogin();
    vi.setSystemTime(Date.now() + 599_000);
    expect((await callback(gateway.access.login(inTime.location), inTime.browser.headers())).status).toBe(303);
  });
});

describe('/connections: what a person sees and does', () => {
  it('lists the stored token by its last four characters and the apps connected, never the token', async () => {
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    const { page } = await openConnections(gateway);
    const html = await page.text();
    expect(html).toContain('alice@example.com');
    expect(html).toContain(`ending in <code>${ALICE_TOKEN.slice(-4)}</code>`);
    expect(html).toContain('Test MCP Client');
    expect(html).toContain('localhost:33418');
    expect(html).not.toContain(ALICE_TOKEN);
    expect(page.headers.get('X-Frame-Options')).toBe('DENY');
    expect(html).not.toMatch(/<script/i);
  });

  it('disconnects an app: its access and refresh tokens stop working at once', async () => {
    const { client, tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    expect((await ping(tokens.access_token)).status).toBe(200);
    const { browser, page } = await openConnections(gateway);
    const html = await page.text();
    const grant = /name="grant" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const done = await connectionsPost(gateway, browser, { csrf: csrfOf(html), action: 'disconnect', grant });
    expect(done.status).toBe(303);
    expect((await ping(tokens.access_token)).status).toBe(401);
    const refresh = await gateway.fetch('/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId }),
    });
    expect(refresh.status).toBe(400);
  });

  it('replaces a token after checking it, and refuses one the upstream refuses', async () => {
    const { tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    const { browser, page } = await openConnections(gateway);
    const csrf = csrfOf(await page.text());
    const refused = await connectionsPost(gateway, browser, { csrf, action: 'replace-token', upstream: 'notes', token: 'notes_wrong' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('That token was refused by Notes');

    notes.accepted.add('notes_alice_NEW_9999');
    expect((await connectionsPost(gateway, browser, { csrf, action: 'replace-token', upstream: 'notes', token: 'notes_alice_NEW_9999' })).status).toBe(303);
    expect(await (await ping(tokens.access_token)).json()).toMatchObject({ result: { as: '9999' } });
  });

  it('deletes a token and disconnects the apps that used it', async () => {
    const { tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    // Used just before, so the isolate has it cached (issue #10): the delete must still stop it.
    expect((await ping(tokens.access_token)).status).toBe(200);
    const { browser, page } = await openConnections(gateway);
    expect((await connectionsPost(gateway, browser, { csrf: csrfOf(await page.text()), action: 'delete-token', upstream: 'notes' })).status).toBe(303);
    expect(await env.OAUTH_KV.get('user-token:notes:alice@example.com')).toBeNull();
    expect((await ping(tokens.access_token)).status).toBe(401);
  });

  it('refuses a post without the session field, from another site, or without a session', async () => {
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    const { browser, page } = await openConnections(gateway);
    const csrf = csrfOf(await page.text());
    expect((await connectionsPost(gateway, browser, { action: 'delete-token', upstream: 'notes' })).status).toBe(403);
    expect((await connectionsPost(gateway, browser, { csrf, action: 'delete-token', upstream: 'notes' }, 'https://evil.example')).status).toBe(403);
    expect((await connectionsPost(gateway, new Browser(), { csrf, action: 'delete-token', upstream: 'notes' })).status).toBe(403);
    expect(await env.OAUTH_KV.get('user-token:notes:alice@example.com')).not.toBeNull();
  });

  it("refuses a person's post that touches another person's grant or token", async () => {
    const bob = await signInWithOwnToken(gateway, BOB_TOKEN, { email: 'bob@example.com' });
    const bobGrant = (await env.OAUTH_KV.list({ prefix: 'grant:bob@example.com:' })).keys[0]?.name.split(':')[2] ?? '';
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    const { browser, page } = await openConnections(gateway);
    const csrf = csrfOf(await page.text());
    expect((await connectionsPost(gateway, browser, { csrf, action: 'disconnect', grant: bobGrant })).status).toBe(404);
    expect((await connectionsPost(gateway, browser, { csrf, action: 'disconnect', grant: bobGrant, email: 'bob@example.com' })).status).toBe(403);
    expect((await connectionsPost(gateway, browser, { csrf, action: 'delete-token', upstream: 'notes', email: 'bob@example.com' })).status).toBe(403);
    expect((await ping(bob.tokens.access_token)).status).toBe(200);
  });

  it('signs out', async () => {
    const { browser, page } = await openConnections(gateway);
    const out = await connectionsPost(gateway, browser, { csrf: csrfOf(await page.text()), action: 'sign-out' });
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie().join()).toMatch(/__Host-connections=; Max-Age=0/);
    expect((await gateway.fetch('/connections', { headers: browser.headers(), redirect: 'manual' })).status).toBe(302);
  });
});

describe('/connections: admins', () => {
  it("shows everyone's connections and token status, never a token, and logs what an admin does to whom", async () => {
    const bob = await signInWithOwnToken(gateway, BOB_TOKEN, { email: 'bob@example.com' });
    const single = await signIn(gateway, { login: { email: 'carol@example.com' } });
    const logs = vi.spyOn(console, 'log');
    const { browser, page } = await openConnections(gateway, { email: 'admin@example.com' });
    const html = await page.text();
    expect(html).toContain('Everyone (admin)');
    expect(html).toContain('bob@example.com');
    expect(html).toContain('carol@example.com');
    expect(html).not.toContain(BOB_TOKEN);
    expect(html).not.toContain(BOB_TOKEN.slice(-4));

    const csrf = csrfOf(html);
    expect((await connectionsPost(gateway, browser, { csrf, action: 'delete-token', upstream: 'notes', email: 'bob@example.com' })).status).toBe(303);
    expect((await ping(bob.tokens.access_token)).status).toBe(401);
    const carolGrant = (await env.OAUTH_KV.list({ prefix: 'grant:carol@example.com:' })).keys[0]?.name.split(':')[2] ?? '';
    expect((await connectionsPost(gateway, browser, { csrf, action: 'disconnect', grant: carolGrant, email: 'carol@example.com' })).status).toBe(303);
    expect((await ping(single.tokens.access_token, '/mcp')).status).toBe(401);

    // Each action once, with who did it (actor) to whom (subject).
    const audit = logs.mock.calls
      .map(([line]) => JSON.parse(String(line)) as Record<string, unknown>)
      .filter((l) => l.event === 'own_token_deleted' || l.event === 'app_disconnected');
    expect(audit).toEqual([
      expect.objectContaining({ actor: 'admin@example.com', subject: 'bob@example.com', event: 'own_token_deleted', upstream: 'notes' }),
      expect.objectContaining({ actor: 'admin@example.com', subject: 'carol@example.com', event: 'app_disconnected', upstream: 'mcp' }),
    ]);
  });

  it('does not let an admin save a token for someone else', async () => {
    const { browser, page } = await openConnections(gateway, { email: 'admin@example.com' });
    const answer = await connectionsPost(gateway, browser, {
      csrf: csrfOf(await page.text()),
      action: 'replace-token',
      upstream: 'notes',
      token: ALICE_TOKEN,
      email: 'alice@example.com',
    });
    expect(answer.status).toBe(403);
  });
});
