import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Browser } from './fixtures/browser';
import { authorize, CLIENT_REDIRECT, callback, consentHandle, Gateway, gatewayEnv, registerClient } from './fixtures/gateway';
import { NotesUpstream, openConnections, ownTokensEnv, toTokenStep } from './fixtures/own-tokens';

/** Switches the gateway to one with a `userSupplied` notes upstream. */
function withOwnTokens(): void {
  gateway.env = ownTokensEnv();
  new NotesUpstream().install(gateway);
}

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

/** The one policy every page carries: nothing loads, nothing runs, nothing frames it. */
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
const HOSTILE_NAME = '<ScRiPt src=//evil.example/x.js></sCrIpT><script>alert(1)</script>';

/** An HTML page that can run nothing: the whole CSP, no script element of any spelling. */
async function expectScriptless(response: Response, status: number): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
  expect(response.headers.get('Content-Security-Policy')).toBe(PAGE_CSP);
  expect(response.headers.get('X-Frame-Options')).toBe('DENY');
  expect(response.headers.get('X-Content-Type-Options')).toBe('nosniff');
  expect(response.headers.get('Cache-Control')).toBe('no-store');
  const page = await response.text();
  expect(page).toMatch(/^<!doctype html>/i);
  expect(page).not.toMatch(/<\s*script/i);
  expect(page).not.toMatch(/javascript:/i);
  return page;
}

/** A page the gateway renders, and how to reach it through the Worker. */
const pages: Array<[string, number, () => Promise<Response>]> = [
  ['the landing page', 200, () => gateway.fetch('/')],
  [
    'the consent page, for a client whose name is markup',
    200,
    async () => (await authorize(gateway, new Browser(), await registerClient(gateway, { client_name: HOSTILE_NAME }))).response,
  ],
  ['the page for an unknown client', 400, async () => (await authorize(gateway, new Browser(), { clientId: 'nobody', redirectUri: CLIENT_REDIRECT })).response],
  [
    'the page for a client metadata document that cannot be fetched',
    400,
    async () => {
      const url = 'https://client.example/missing.json';
      gateway.routes.set(url, () => new Response('not found', { status: 404 }));
      return (await authorize(gateway, new Browser(), { clientId: url, redirectUri: CLIENT_REDIRECT })).response;
    },
  ],
  ['the 405 page for /authorize', 405, () => gateway.fetch('/authorize', { method: 'PUT' })],
  [
    'the page refusing a consent form from another site',
    403,
    async () => {
      const browser = new Browser();
      const { response } = await authorize(gateway, browser, await registerClient(gateway));
      return gateway.fetch('/authorize', {
        method: 'POST',
        headers: browser.headers({ 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example' }),
        body: new URLSearchParams({ handle: await consentHandle(response), decision: 'approve' }),
      });
    },
  ],
  [
    'the page asking for a person’s own token',
    200,
    async () => {
      withOwnTokens();
      return (await toTokenStep(gateway)).page;
    },
  ],
  [
    '/connections',
    200,
    async () => {
      withOwnTokens();
      return (await openConnections(gateway)).page;
    },
  ],
  ['the page for a sign-in link that no longer works', 400, () => callback(gateway, new Browser(), new URLSearchParams({ code: 'c', state: 's' }))],
  ['the page asking for https', 421, () => gateway.fetch('http://gw.example/')],
  [
    'the misconfigured page',
    500,
    () => {
      gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined });
      return gateway.fetch('/authorize');
    },
  ],
  [
    'the page for an internal error',
    500,
    () => {
      gateway.env = { ...gatewayEnv(), OAUTH_KV: brokenKv() };
      return gateway.fetch(`/authorize?client_id=x&redirect_uri=${encodeURIComponent(CLIENT_REDIRECT)}&response_type=code`);
    },
  ],
];

describe('pages carry no script', () => {
  it.each(pages)('%s', async (_, status, reach) => {
    await expectScriptless(await reach(), status);
  });

  it('answers unknown paths and methods with JSON, never a page', async () => {
    for (const [path, init] of [
      ['/nowhere', undefined],
      ['/callback', { method: 'POST' }],
      ['/', { method: 'POST' }],
    ] as const) {
      const response = await gateway.fetch(path, init);
      expect(response.status).toBe(404);
      expect(response.headers.get('Content-Type')).toBe('application/json');
      expect(await response.text()).not.toMatch(/<\s*script/i);
    }
  });
});

describe('server-side failures', () => {
  it('show a reference id on the 500 page, and the same id in the log line', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    gateway.env = { ...gatewayEnv(), OAUTH_KV: brokenKv() };
    const response = await gateway.fetch(`/authorize?client_id=x&redirect_uri=${encodeURIComponent(CLIENT_REDIRECT)}&response_type=code`);
    const page = await expectScriptless(response, 500);
    const reference = /Reference: <code>([0-9a-f-]{36})<\/code>/.exec(page)?.[1];
    expect(reference).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const lines = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>);
    expect(lines).toEqual([{ event: 'internal_error', reference, error: expect.stringContaining('KV is down') }]);
    // The cause goes to the log only.
    expect(page).not.toContain('KV is down');
  });

  it('give each failure its own reference', async () => {
    gateway.env = { ...gatewayEnv(), OAUTH_KV: brokenKv() };
    const path = `/authorize?client_id=x&redirect_uri=${encodeURIComponent(CLIENT_REDIRECT)}&response_type=code`;
    const [a, b] = await Promise.all([gateway.fetch(path).then((r) => r.text()), gateway.fetch(path).then((r) => r.text())]);
    const ref = (page: string) => /Reference: <code>([0-9a-f-]{36})<\/code>/.exec(page)?.[1];
    expect(ref(a)).toBeTruthy();
    expect(ref(a)).not.toBe(ref(b));
  });
});

/** A KV namespace that fails every operation, as during an outage. */
function brokenKv(): KVNamespace {
  const fail = () => Promise.reject(new Error('KV is down'));
  return { get: fail, put: fail, list: fail, delete: fail, getWithMetadata: fail } as unknown as KVNamespace;
}
