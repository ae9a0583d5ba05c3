import { env, reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Browser } from './fixtures/browser';
import { exchangeCode, Gateway, mcpRequest, ORIGIN, tokenRequest } from './fixtures/gateway';
import {
  ALICE_TOKEN,
  aggregateEnv,
  BOB_TOKEN,
  codeOf,
  NotesUpstream,
  openConnections,
  ownTokensEnv,
  pasteToken,
  signInWithOwnToken,
  skipToken,
  stepState,
  TOKEN_KEY,
  TRACKER_TOKEN,
  TRACKER_URL,
  toTokenStep,
  WORK,
} from './fixtures/own-tokens';

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
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const ping = (token: string) => mcpRequest(gateway, token, undefined, '/notes/mcp');

describe('bring your own token: the login step', () => {
  it('asks for a token after Access, on a page that cannot be framed and carries no script, and issues no code before', async () => {
    const { page } = await toTokenStep(gateway);
    expect(page.status).toBe(200);
    expect(page.headers.get('Location')).toBeNull();
    expect(page.headers.get('X-Frame-Options')).toBe('DENY');
    expect(page.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('Cache-Control')).toBe('no-store');
    const html = await page.text();
    expect(html).toContain('Your token for Notes');
    expect(html).toContain('href="https://notes.example/settings/tokens"');
    expect(html.match(/<input[^>]*name="token"[^>]*>/g)).toEqual([expect.stringContaining('type="password"')]);
    expect(html).toContain('Save and continue');
    expect(html).not.toMatch(/<script/i);
  });

  it('shows the page again for a refused token, stores nothing, then takes the right one and only then issues the code', async () => {
    const step = await toTokenStep(gateway);
    const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('That token was refused by Notes');
    expect(html).not.toContain('notes_wrong_token');
    expect((await env.OAUTH_KV.list({ prefix: 'user-token:' })).keys).toEqual([]);

    const accepted = await pasteToken(gateway, step.browser, stepState(html), ALICE_TOKEN);
    expect(accepted.status).toBe(302);
    const redirect = new URL(accepted.headers.get('Location') ?? '');
    expect(redirect.searchParams.get('state')).toBe(step.state);
    expect(redirect.searchParams.get('code')).toBeTruthy();
    expect((await env.OAUTH_KV.list({ prefix: 'user-token:' })).keys.map((k) => k.name)).toEqual(['user-token:notes:alice@example.com']);
  });

  it('sends each person their own token upstream', async () => {
    const alice = await signInWithOwnToken(gateway, ALICE_TOKEN);
    const bob = await signInWithOwnToken(gateway, BOB_TOKEN, { email: 'bob@example.com' });
    notes.seen.length = 0;
    expect(await (await ping(alice.tokens.access_token)).json()).toMatchObject({ result: { as: ALICE_TOKEN.slice(-4) } });
    expect(await (await ping(bob.tokens.access_token)).json()).toMatchObject({ result: { as: BOB_TOKEN.slice(-4) } });
    expect(notes.seen).toEqual([`Bearer ${ALICE_TOKEN}`, `Bearer ${BOB_TOKEN}`]);
  });

  it('skips the step for someone whose saved token still works', async () => {
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    const again = await toTokenStep(gateway);
    expect(again.page.status).toBe(302);
    expect(new URL(again.page.headers.get('Location') ?? '').searchParams.get('code')).toBeTruthy();
  });

  it('asks again when the saved token is refused upstream', async () => {
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    notes.accepted.delete(ALICE_TOKEN);
    const again = await toTokenStep(gateway);
    expect(again.page.status).toBe(200);
    expect(await again.page.text()).toContain('Your saved token was refused by Notes');
  });

  it('says the upstream could not be reached and stores nothing', async () => {
    const step = await toTokenStep(gateway);
    notes.down = true;
    const answer = await pasteToken(gateway, step.browser, stepState(await step.page.text()), ALICE_TOKEN);
    expect(answer.status).toBe(503);
    expect(await answer.text()).toContain('Notes could not be reached');
    expect((await env.OAUTH_KV.list({ prefix: 'user-token:' })).keys).toEqual([]);
  });

  it.each([
    ['empty', ''],
    ['with a space', 'two words'],
    ['over 4 KiB', 'x'.repeat(4097)],
    ['not ASCII', 'tökén'],
  ])('refuses a token that is %s without asking the upstream', async (_, token) => {
    const step = await toTokenStep(gateway);
    notes.seen.length = 0;
    const answer = await pasteToken(gateway, step.browser, stepState(await step.page.text()), token);
    expect(answer.status).toBe(400);
    expect(await answer.text()).toContain('That is not a token');
    expect(notes.seen).toEqual([]);
  });

  it('refuses the form from another site, another browser, or twice', async () => {
    const step = await toTokenStep(gateway);
    const state = stepState(await step.page.text());
    expect((await pasteToken(gateway, step.browser, state, ALICE_TOKEN, 'https://evil.example')).status).toBe(403);
    expect((await pasteToken(gateway, new Browser(), state, ALICE_TOKEN)).status).toBe(400);
    expect((await pasteToken(gateway, step.browser, state, ALICE_TOKEN)).status).toBe(302);
    expect((await pasteToken(gateway, step.browser, state, ALICE_TOKEN)).status).toBe(400);
  });

  it('expires with the login, after ten minutes: in KV and in the browser', async () => {
    const step = await toTokenStep(gateway);
    const state = stepState(await step.page.text());
    const hash = [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(state)))]
      .map((b) => b.toString(16).padStart(2, '0'))
      .join('');
    // miniflare's KV keeps its own clock, so the expiry is read rather than waited for.
    const entry = (await env.OAUTH_KV.list({ prefix: `transaction:${hash}` })).keys[0];
    expect(entry?.expiration).toBeGreaterThan(Date.now() / 1000 + 590);
    expect(entry?.expiration).toBeLessThanOrEqual(Date.now() / 1000 + 601);
    const binding = step.page.headers.getSetCookie().find((c) => c.includes(hash));
    expect(binding).toMatch(/^__Host-/);
    expect(binding).toMatch(/;\s*Max-Age=600(;|$)/i);
    expect(binding).toMatch(/;\s*Secure(;|$)/i);
    expect(binding).toMatch(/;\s*HttpOnly(;|$)/i);
  });

  it('does not let an Access sign-in state skip the sign-in', async () => {
    // The state Access would return with: posted to the token step instead of /callback.
    const { browser } = await toTokenStep(gateway);
    const client = await import('./fixtures/gateway');
    const registered = await client.registerClient(gateway);
    const { response } = await client.authorize(gateway, browser, registered, { resource: `${ORIGIN}/notes/mcp` });
    const toAccess = await client.decide(gateway, browser, await client.consentHandle(response));
    const accessState = new URL(toAccess.headers.get('Location') ?? '').searchParams.get('state') ?? '';
    const answer = await pasteToken(gateway, browser, accessState, ALICE_TOKEN);
    expect(answer.status).toBe(400);
    expect(answer.headers.get('Location')).toBeNull();
  });

  it('issue #19: re-validates a grant that went through the token step, as any other, at refresh', async () => {
    const { client, tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN, { email: 'alice@example.com', refreshToken: true });
    gateway.access.revokeRefreshTokens();
    const refused = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('uses a configured token for people who have not stored one', async () => {
    gateway.env = ownTokensEnv({
      UPSTREAMS: JSON.stringify({ notes: { url: 'https://notes-mcp.example/mcp', title: 'Notes', userSupplied: true, token: 'NOTES_TOKEN' } }),
      NOTES_TOKEN: BOB_TOKEN,
    });
    const { page } = await toTokenStep(gateway);
    expect(page.status).toBe(302);
  });
});

describe('bring your own token: at request time', () => {
  it('tells the person where to replace a token the upstream refuses, without a challenge', async () => {
    const { tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    notes.accepted.delete(ALICE_TOKEN);
    const response = await ping(tokens.access_token);
    expect(response.status).toBe(502);
    expect(response.headers.get('WWW-Authenticate')).toBeNull();
    const body = await response.json<{ error: { code: number; message: string } }>();
    expect(body.error.code).toBe(-32003);
    expect(body.error.message).toContain(`${ORIGIN}/connections`);
    expect(JSON.stringify(body)).not.toContain(ALICE_TOKEN);
  });

  it('answers -32002 pointing at /connections once the token is gone', async () => {
    const { tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
    // Another isolate would see the deletion within the cache time; a fresh configuration is a fresh cache.
    gateway.env = ownTokensEnv();
    const response = await ping(tokens.access_token);
    expect(response.status).toBe(403);
    const body = await response.json<{ error: { code: number; message: string } }>();
    expect(body.error.code).toBe(-32002);
    expect(body.error.message).toContain(`${ORIGIN}/connections`);
  });

  it('never writes a token into a log line', async () => {
    const logs = [vi.spyOn(console, 'log'), vi.spyOn(console, 'warn'), vi.spyOn(console, 'error')];
    const { tokens } = await signInWithOwnToken(gateway, ALICE_TOKEN);
    await ping(tokens.access_token);
    const text = JSON.stringify(logs.flatMap((spy) => spy.mock.calls));
    expect(text).toContain('own_token_saved');
    expect(text).not.toContain(ALICE_TOKEN);
    expect(text).not.toContain(TOKEN_KEY);
  });
});

describe('issue #17: a login state finishes only as the purpose it began with', () => {
  it('refuses the token step’s state at /callback, so it cannot stand in for an Access sign-in', async () => {
    const { browser, page } = await toTokenStep(gateway);
    const state = stepState(await page.text());
    const answer = browser.receive(
      await gateway.fetch(`/callback?${new URLSearchParams({ code: 'c', state })}`, { headers: browser.headers(), redirect: 'manual' }),
    );
    expect(answer.status).toBe(400);
    expect(answer.headers.get('Location')).toBeNull();
    expect(await answer.text()).toMatch(/no longer works/);
  });

  it('refuses a /connections sign-in state at the token step', async () => {
    const browser = new Browser();
    const start = browser.receive(await gateway.fetch('/connections', { redirect: 'manual' }));
    const state = new URL(start.headers.get('Location') ?? '').searchParams.get('state') ?? '';
    const answer = await pasteToken(gateway, browser, state, ALICE_TOKEN);
    expect(answer.status).toBe(400);
    expect(answer.headers.get('Location')).toBeNull();
    expect(await env.OAUTH_KV.list({ prefix: 'user-token:' })).toMatchObject({ keys: [] });
  });
});

describe("issue #21: an aggregate's sign-in asks for each own token in turn", () => {
  beforeEach(async () => {
    gateway.env = aggregateEnv();
    new NotesUpstream(TRACKER_URL, [TRACKER_TOKEN]).install(gateway);
  });
  const storedKeys = async () => (await env.OAUTH_KV.list({ prefix: 'user-token:' })).keys.map((k) => k.name).sort();
  const toWorkStep = () => toTokenStep(gateway, {}, undefined, undefined, WORK);

  it('asks for each userSupplied upstream in the configured order, never for a shared one, then issues a code that works', async () => {
    const step = await toWorkStep();
    expect(step.page.status).toBe(200);
    const first = await step.page.text();
    expect(first).toContain('Your token for Notes');
    expect(first).toContain('Work tools reaches Notes');
    expect(first).toMatch(/<button[^>]*name="skip"[^>]*formnovalidate[^>]*>Skip for now: add it later on \/connections<\/button>/);

    const second = await pasteToken(gateway, step.browser, stepState(first), ALICE_TOKEN);
    expect(second.status).toBe(200);
    const html = await second.text();
    expect(html).toContain('Your token for Tracker');
    expect(html).toContain('href="https://tracker.example/tokens"');
    expect(html).not.toContain('Wiki');

    const done = await pasteToken(gateway, step.browser, stepState(html), TRACKER_TOKEN);
    expect(codeOf(done)).not.toBe('');
    expect(await storedKeys()).toEqual(['user-token:notes:alice@example.com', 'user-token:tracker:alice@example.com']);
    const tokens = await exchangeCode(gateway, step.client, codeOf(done), step.verifier, WORK);
    expect(tokens.status).toBe(200);
  });

  it('lets the person skip any of them, storing nothing for a skipped one', async () => {
    const step = await toWorkStep();
    const second = await skipToken(gateway, step.browser, stepState(await step.page.text()));
    expect(second.status).toBe(200);
    const html = await second.text();
    expect(html).toContain('Your token for Tracker');
    const done = await pasteToken(gateway, step.browser, stepState(html), TRACKER_TOKEN);
    expect(codeOf(done)).not.toBe('');
    expect(await storedKeys()).toEqual(['user-token:tracker:alice@example.com']);

    const again = await toTokenStep(gateway, { email: 'bob@example.com' }, undefined, undefined, WORK);
    const next = await skipToken(gateway, again.browser, stepState(await again.page.text()));
    expect(codeOf(await skipToken(gateway, again.browser, stepState(await next.text())))).not.toBe('');
    expect(await storedKeys()).toEqual(['user-token:tracker:alice@example.com']);
  });

  it('says on /connections which skipped tokens the aggregate goes without', async () => {
    const step = await toWorkStep();
    const second = await skipToken(gateway, step.browser, stepState(await step.page.text()));
    expect(codeOf(await pasteToken(gateway, step.browser, stepState(await second.text()), TRACKER_TOKEN))).not.toBe('');
    const html = await (await openConnections(gateway)).page.text();
    const section = html.slice(html.indexOf('<h2>Work tools</h2>'));
    expect(section).toContain(`<code>${WORK}</code>`);
    expect(section).toMatch(/Without your token for Notes, their tools are left out here/);
    expect(section).toContain('Test MCP Client');
  });

  it('does not ask again for a token already stored, from the direct path or the aggregate', async () => {
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    const step = await toWorkStep();
    expect(step.page.status).toBe(200);
    const html = await step.page.text();
    expect(html).toContain('Your token for Tracker');
    expect(codeOf(await pasteToken(gateway, step.browser, stepState(html), TRACKER_TOKEN))).not.toBe('');

    const third = await toWorkStep();
    expect(codeOf(third.page)).not.toBe('');
  });

  it('shows the same upstream again, still skippable, for a refused token', async () => {
    const step = await toWorkStep();
    const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('That token was refused by Notes');
    expect(html).toContain('name="skip"');
    expect(await storedKeys()).toEqual([]);
  });

  it('does not ask for an upstream the person may not use', async () => {
    gateway.env = aggregateEnv({
      UPSTREAMS: JSON.stringify({
        notes: { url: 'https://notes-mcp.example/mcp', title: 'Notes', userSupplied: true, allowedEmails: 'bob@example.com' },
        wiki: { url: 'https://wiki-mcp.example/mcp', token: 'WIKI_TOKEN' },
        tracker: { url: TRACKER_URL, title: 'Tracker', userSupplied: true },
      }),
    });
    const step = await toWorkStep();
    const html = await step.page.text();
    expect(html).toContain('Your token for Tracker');
    expect(html).not.toContain('Notes');
  });

  it('never skips the token step of a direct upstream, even when the form says skip', async () => {
    gateway.env = ownTokensEnv();
    const step = await toTokenStep(gateway);
    const html = await step.page.text();
    expect(html).not.toContain('name="skip"');
    const forged = await skipToken(gateway, step.browser, stepState(html));
    expect(forged.status).toBe(400);
    expect(forged.headers.get('Location')).toBeNull();
    expect(await storedKeys()).toEqual([]);
  });
});
