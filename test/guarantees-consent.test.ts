import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ACCESS_BASE } from './fixtures/access';
import { Browser } from './fixtures/browser';
import { authorize, consentHandle, decide, Gateway, gatewayEnv, ORIGIN, RESOURCE, registerClient, signIn, type TestClient } from './fixtures/gateway';

const APPROVALS = '__Host-oauth-approvals';
const SECRET = gatewayEnv().COOKIE_ENCRYPTION_KEY as string;

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

/** Whether /authorize skipped the consent page (went straight to Access) for this client. */
async function skipsConsent(browser: Browser, client: TestClient): Promise<boolean> {
  const { response } = await authorize(gateway, browser, client);
  if (response.status === 302) {
    expect(response.headers.get('Location')).toMatch(new RegExp(`^${ACCESS_BASE}/authorization\\?`));
    return true;
  }
  expect(response.status).toBe(200);
  expect(await consentHandle(response)).toBeTruthy();
  return false;
}

/** A browser holding exactly this approvals cookie value. */
function browserWith(value: string): Browser {
  const browser = new Browser();
  browser.receive(new Response(null, { headers: { 'Set-Cookie': `${APPROVALS}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax` } }));
  return browser;
}

/** The approvals cookie as the library writes it, signed with `secret`, approving `client` for an hour. */
async function approvalsCookie(client: TestClient, secret: string): Promise<string> {
  const b64 = (bytes: Uint8Array) =>
    btoa(String.fromCharCode(...bytes))
      .replace(/=+$/, '')
      .replace(/\+/g, '-')
      .replace(/\//g, '_');
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify([client.clientId, client.redirectUri, RESOURCE, null])));
  const payload = b64(new TextEncoder().encode(JSON.stringify([{ k: b64(new Uint8Array(digest)), s: ['mcp'], e: Math.floor(Date.now() / 1000) + 3600 }])));
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const signature = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(payload));
  return `${payload}.${b64(new Uint8Array(signature))}`;
}

/** The value of the approvals cookie a sign-in left in its browser. */
async function approvedCookieValue(): Promise<{ client: TestClient; value: string }> {
  const client = await registerClient(gateway);
  const browser = new Browser();
  const { response } = await authorize(gateway, browser, client);
  const approved = await decide(gateway, browser, await consentHandle(response));
  const line = approved.headers.getSetCookie().find((cookie) => cookie.startsWith(`${APPROVALS}=`)) ?? '';
  return { client, value: line.slice(APPROVALS.length + 1).split(';')[0] ?? '' };
}

describe('remembered approvals', () => {
  it('are kept in a __Host- cookie: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { response } = await authorize(gateway, browser, client);
    const approved = await decide(gateway, browser, await consentHandle(response));
    const line = approved.headers.getSetCookie().find((cookie) => cookie.startsWith(`${APPROVALS}=`));
    expect(line).toBeDefined();
    const [, ...attributes] = (line ?? '').split(';').map((part) => part.trim());
    const names = attributes.map((attribute) => attribute.split('=')[0]?.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(['path', 'secure', 'httponly', 'samesite', 'max-age']));
    expect(names).not.toContain('domain');
    expect(attributes).toContain('Path=/');
    expect(attributes.find((a) => /^samesite=/i.test(a))).toBe('SameSite=Lax');
    expect(Number(attributes.find((a) => /^max-age=/i.test(a))?.split('=')[1])).toBeGreaterThan(0);
  });

  it('skip the consent page for a cookie this deployment signed (the control for the refusals below)', async () => {
    const client = await registerClient(gateway);
    expect(await skipsConsent(browserWith(await approvalsCookie(client, SECRET)), client)).toBe(true);
  });

  it('are refused when the cookie was signed with another deployment’s key', async () => {
    const client = await registerClient(gateway);
    const foreign = await approvalsCookie(client, 'another-deployments-key-0123456789abcdef');
    expect(await skipsConsent(browserWith(foreign), client)).toBe(false);
  });

  it('are refused when COOKIE_ENCRYPTION_KEY was rotated since the approval', async () => {
    const { client, browser } = await signIn(gateway);
    expect(await skipsConsent(browser, client)).toBe(true);
    gateway.env = gatewayEnv({ COOKIE_ENCRYPTION_KEY: 'rotated-cookie-key-fedcba9876543210fedcba' });
    expect(await skipsConsent(browser, client)).toBe(false);
  });

  it('are refused when the approved client in the cookie was swapped for another', async () => {
    const { value } = await approvedCookieValue();
    const other = await registerClient(gateway);
    const [, signature] = value.split('.');
    const [forgedPayload] = (await approvalsCookie(other, 'whatever-key-the-attacker-has-0123456789')).split('.');
    expect(await skipsConsent(browserWith(`${forgedPayload}.${signature}`), other)).toBe(false);
  });

  it('are refused when the signature was altered', async () => {
    const { client, value } = await approvedCookieValue();
    const [payload, signature = ''] = value.split('.');
    const flipped = `${signature.slice(0, 5)}${signature[5] === 'A' ? 'B' : 'A'}${signature.slice(6)}`;
    expect(await skipsConsent(browserWith(value), client)).toBe(true);
    expect(await skipsConsent(browserWith(`${payload}.${flipped}`), client)).toBe(false);
    expect(await skipsConsent(browserWith(`${payload}.`), client)).toBe(false);
    expect(await skipsConsent(browserWith(payload ?? ''), client)).toBe(false);
  });
});

describe('consent form Origin check', () => {
  async function consentPage() {
    const browser = new Browser();
    const { response } = await authorize(gateway, browser, await registerClient(gateway));
    return { browser, handle: await consentHandle(response) };
  }
  function post(browser: Browser | undefined, handle: string, origin?: string) {
    const headers = new Headers({ 'Content-Type': 'application/x-www-form-urlencoded' });
    if (origin !== undefined) headers.set('Origin', origin);
    return gateway.fetch('/authorize', {
      method: 'POST',
      headers: browser ? browser.headers(headers) : headers,
      body: new URLSearchParams({ handle, decision: 'approve' }),
    });
  }

  it('accepts a post without Origin from the browser that holds the handle’s cookie', async () => {
    const { browser, handle } = await consentPage();
    const response = await post(browser, handle);
    expect(response.status).toBe(302);
    expect(response.headers.get('Location')).toMatch(new RegExp(`^${ACCESS_BASE}/authorization\\?`));
  });

  it('refuses a post without Origin that lacks the handle’s cookie', async () => {
    const { handle } = await consentPage();
    const response = await post(undefined, handle);
    expect(response.status).toBe(400);
    expect(response.headers.get('Location')).toBeNull();
    expect(gateway.access.requests).toEqual([]);
  });

  it.each([
    ['another site', 'https://evil.example'],
    ['an opaque origin ("null")', 'null'],
    ['this host over another scheme', ORIGIN.replace('https:', 'http:')],
  ])('refuses a post from %s even with the cookie', async (_, origin) => {
    const { browser, handle } = await consentPage();
    const response = await post(browser, handle, origin);
    expect(response.status).toBe(403);
    expect(response.headers.get('Location')).toBeNull();
  });
});
