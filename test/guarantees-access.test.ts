import { env as bindings, reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LoginOptions } from './fixtures/access';
import { ClockedBrowser } from './fixtures/clocked-browser';
import { authorize, callback, consentHandle, decide, Gateway, loginAtAccess, registerClient, storedGrants } from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('Access ID token algorithm', () => {
  it.each<[string, LoginOptions['signing']]>([
    ['HS256 keyed with the published JWK (key confusion)', 'hs256-public-key'],
    ["RS384 with Access's own key", 'rs384'],
  ])('refuses an ID token signed with %s, at the algorithm check', async (_, signing) => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { browser, query } = await loginAtAccess(gateway, { signing });
    const response = await callback(gateway, browser, query);
    expect(response.status).toBe(502);
    expect(response.headers.get('Location')).toBeNull();
    expect(await response.text()).toMatch(/could not verify your sign-in/);
    expect(await storedGrants()).toBe(0);
    // Refused for its algorithm, before any key is tried: the pin, not a later accident, stops it.
    // Page errors only: the audit trail's own warnings (no schema in this test's D1) are not the sign-in's.
    const reasons = warn.mock.calls
      .map((args) => JSON.parse(String(args[0])) as { event?: string; reason?: string })
      .filter((line) => line.event === 'page_error')
      .map((line) => line.reason);
    expect(reasons).toEqual([expect.stringMatching(/^id token rejected: .*"alg" header/)]);
  });

  it('accepts the same login signed with RS256 (the control for the refusals above)', async () => {
    const { browser, query } = await loginAtAccess(gateway, { signing: 'valid' });
    expect((await callback(gateway, browser, query)).status).toBe(302);
  });
});

describe('Access state lifetime', () => {
  /** Consent approved: the browser is on its way to Access with a fresh `state`. */
  async function toAccess(browser: ClockedBrowser) {
    const { response } = await authorize(gateway, browser, await registerClient(gateway));
    const approved = await decide(gateway, browser, await consentHandle(response));
    expect(approved.status).toBe(302);
    return gateway.access.login(approved.headers.get('Location') ?? '');
  }

  it('is stored to expire ten minutes after the redirect to Access, with a binding cookie of the same life', async () => {
    const before = Math.floor(Date.now() / 1000);
    const browser = new ClockedBrowser();
    const query = await toAccess(browser);
    const after = Math.ceil(Date.now() / 1000);
    // Consent's own transaction is consumed on approval: what is left is the Access state.
    const { keys } = await bindings.OAUTH_KV.list({ prefix: 'transaction:' });
    expect(keys).toHaveLength(1);
    expect(keys[0]?.expiration).toBeGreaterThanOrEqual(before + 600);
    expect(keys[0]?.expiration).toBeLessThanOrEqual(after + 600);
    expect(browser.cookieNames().filter((name) => name.startsWith('__Host-oauth-upstream'))).toHaveLength(1);
    expect(query.get('state')).toBeTruthy();
  });

  it('still works just before ten minutes have passed', async () => {
    const browser = new ClockedBrowser();
    const query = await toAccess(browser);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 599_000);
    expect((await callback(gateway, browser, query)).status).toBe(302);
  });

  // The library keeps the state in KV with a 600 s `expirationTtl` (asserted above; miniflare's KV
  // runs on its own clock, which fake time does not move) and binds it to the browser with a
  // cookie of `Max-Age=600`, which this browser forgets on the faked clock.
  it('is refused once ten minutes have passed', async () => {
    const browser = new ClockedBrowser();
    const query = await toAccess(browser);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 601_000);
    const response = await callback(gateway, browser, query);
    expect(response.status).toBe(400);
    expect(response.headers.get('Location')).toBeNull();
    expect(await response.text()).toMatch(/no longer works/);
    expect(await storedGrants()).toBe(0);
  });
});
