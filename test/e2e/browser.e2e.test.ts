/**
 * Headless Chromium as the person at the browser, and this file as the MCP client: the client
 * registers (DCR), builds a PKCE authorization URL and listens on a loopback redirect URI; the
 * browser walks the gateway's consent page and the stand-in Access login page by their visible
 * text, as a person would. Screenshots of each page land in test-results/e2e/screenshots/;
 * with UPDATE_SCREENSHOTS=1 the consent and login ones are also copied to docs/screenshots/ for
 * the README.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import type { Browser, BrowserContext, Request as BrowserRequest, Response as BrowserResponse, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newContext, screenshot } from './support/chromium';
import { type E2EStack, startE2EStack } from './support/stack';

const ARRIVAL_TIMEOUT_MS = 15_000;

const CLIENT_NAME = 'Example MCP Client';
const EMAIL = 'alice@example.com';
const ACCESS_APP_NAME = 'MCP OAuth gateway (local)';

let stack: E2EStack;
let redirect: LoopbackRedirect;
let browser: Browser;
let as: oauth.AuthorizationServer;
let accessOrigin: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  // Start all three at once; afterAll stops whichever started, even if another failed.
  const started = await Promise.allSettled([
    startE2EStack().then((s) => (stack = s)),
    LoopbackRedirect.start().then((r) => (redirect = r)),
    launchChromium().then((b) => (browser = b)),
  ]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;

  accessOrigin = new URL(stack.urls.access.issuer).origin;
  const issuer = new URL(stack.urls.gateway);
  const discovery = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true });
  as = await oauth.processDiscoveryResponse(issuer, discovery);
});

afterAll(async () => {
  await Promise.allSettled(contexts.map((c) => c.close()));
  await Promise.allSettled([browser?.close(), redirect?.close(), stack?.stop()]);
});

describe('a person in Chromium', () => {
  it('approves on the consent page, signs in at Access, and the client gets a working token', async () => {
    const { client, auth, page, navigations } = await startAtConsent();
    await screenshot(page, 'consent.png', { readme: true });

    // A real form POST: Chromium sends the page's own Origin (not `null`), and the gateway's
    // Origin check lets it through to Access.
    const [decision] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url() === `${stack.urls.gateway}/authorize`),
      page.getByRole('button', { name: 'Approve' }).click(),
    ]);
    expect((await decision.allHeaders()).origin).toBe(stack.urls.gateway);
    expect((await decision.response())?.status()).toBe(302);

    await arriveAtAccessLogin(page);
    await expectLoginPage(page);
    await screenshot(page, 'access-login.png', { readme: true });

    await signInAtAccess(page);

    const landed = await landOnRedirect(page);
    await page.getByRole('heading', { name: 'Connected' }).waitFor();
    await page.getByText('You can close this tab').waitFor();
    await screenshot(page, 'client-redirect.png');

    // The gateway's own legs: its consent page, the approval's redirect to Access, and later the
    // callback's redirect to the client.
    expect(navigations.filter((n) => n.url.startsWith(`${stack.urls.gateway}/authorize`)).map((n) => `${n.method} ${n.status}`)).toEqual([
      'GET 200',
      'POST 302',
    ]);
    expect(navigations.some((n) => n.url.startsWith(`${stack.urls.gateway}/callback`) && n.status === 302)).toBe(true);

    const tokens = await exchange(client, auth, landed);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe('mcp');
    expect(await listTools(tokens.access_token)).toEqual(expect.arrayContaining(['list_boards', 'create_card', 'move_card']));
  });

  it('skips the consent page for a client this browser already approved', async () => {
    // This browser approves the client once.
    const first = await startAtConsent();
    const { context, client } = first;
    await first.page.getByRole('button', { name: 'Approve' }).click();
    await arriveAtAccessLogin(first.page);
    await signInAtAccess(first.page);
    await landOnRedirect(first.page);

    const page = await context.newPage();
    const navigations = recordNavigations(page);
    const auth = await authorizationFor(client);

    await page.goto(auth.url.href);
    await arriveAtAccessLogin(page);
    await expectLoginPage(page);
    // Straight to Access: the gateway answered /authorize with a redirect, never the consent page.
    expect(navigations.filter((n) => n.url.startsWith(`${stack.urls.gateway}/authorize`)).map((n) => `${n.method} ${n.status}`)).toEqual(['GET 302']);

    await signInAtAccess(page);
    const landed = await landOnRedirect(page);
    const tokens = await exchange(client, auth, landed);
    expect(await listTools(tokens.access_token)).toContain('list_boards');
  });

  it('denies on the consent page: the client gets access_denied and Access is never visited', async () => {
    const { client, auth, page, requests } = await startAtConsent();
    await page.getByRole('button', { name: 'Deny' }).click();

    const landed = await landOnRedirect(page);
    expect(landed.searchParams.get('error')).toBe('access_denied');
    expect(landed.searchParams.get('state')).toBe(auth.state);
    expect(landed.searchParams.has('code')).toBe(false);
    // What the client's OAuth library makes of it.
    let error: unknown;
    try {
      oauth.validateAuthResponse(as, client, landed, auth.state);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(oauth.AuthorizationResponseError);
    expect((error as oauth.AuthorizationResponseError).error).toBe('access_denied');

    await page.getByRole('heading', { name: 'Not connected' }).waitFor();
    await screenshot(page, 'client-redirect-denied.png');

    // Chromium's request log: the decision was posted, and nothing ever went to Access.
    expect(requests.filter((r) => r.url === `${stack.urls.gateway}/authorize`).map((r) => r.method)).toEqual(['POST']);
    expect(requests.filter((r) => r.url.startsWith(`${accessOrigin}/`))).toEqual([]);
  });

  it('cancels at the Access login page: the gateway shows a readable refusal page', async () => {
    const { auth, page } = await startAtConsent();
    await page.getByRole('button', { name: 'Approve' }).click();
    await arriveAtAccessLogin(page);
    await expectLoginPage(page);

    const [callback] = await Promise.all([
      page.waitForResponse((r) => r.url().startsWith(`${stack.urls.gateway}/callback?`)),
      page.getByRole('button', { name: 'Cancel' }).click(),
    ]);
    // Access sends the browser back with error=access_denied; the gateway stops there with a page
    // of its own (it does not pass the error on to the client's redirect URI).
    expect(new URL(callback.url()).searchParams.get('error')).toBe('access_denied');
    expect(callback.status()).toBe(403);
    expect(callback.headers()['content-type']).toMatch(/^text\/html/);
    await page.waitForLoadState();
    await page.getByRole('heading', { name: 'Sign-in was declined' }).waitFor();
    const text = await page.locator('body').innerText();
    expect(text).toContain('Cloudflare Access did not let this account in');
    expect(text).toMatch(/Reference: [0-9a-f-]{36}/);
    expectNoStackTrace(text);
    await screenshot(page, 'access-cancelled.png');

    expect(redirect.received.filter((url) => url.searchParams.get('state') === auth.state)).toEqual([]);
  });

  it('refuses the consent form when another site posts it', async () => {
    const { page, requests } = await startAtConsent();
    const handle = await page.locator('input[name="handle"]').inputValue();
    expect(handle).not.toBe('');

    // A page on another origin (the loopback server) carrying the same form, handle and all.
    await page.goto(redirect.forgeryUrl(`${stack.urls.gateway}/authorize`, handle));
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${stack.urls.gateway}/authorize`),
      page.getByRole('button', { name: 'Claim your prize' }).click(),
    ]);
    expect((await refused.request().allHeaders()).origin).toBe(redirect.origin);
    expect(refused.status()).toBe(403);
    await page.waitForLoadState();
    await page.getByRole('heading', { name: 'Request refused' }).waitFor();
    const text = await page.locator('body').innerText();
    expect(text).toContain('This form can only be sent from this site');
    expectNoStackTrace(text);
    await screenshot(page, 'consent-cross-site-refused.png');
    expect(requests.filter((r) => r.url.startsWith(`${accessOrigin}/`))).toEqual([]);
  });
});

// --- the browser ---------------------------------------------------------------------------

interface Navigation {
  method: string;
  url: string;
  status: number;
  /** The page's text for an error status, else empty. */
  text: Promise<string>;
}

/** A newly registered client's authorization, opened in a fresh browser, on the consent page. */
async function startAtConsent() {
  const client = await register(CLIENT_NAME);
  const opened = await openBrowser();
  const auth = await authorizationFor(client);
  const response = await opened.page.goto(auth.url.href);
  expect(response?.status()).toBe(200);
  await expectConsentPage(opened.page, CLIENT_NAME);
  return { ...opened, client, auth };
}

/** Types the email on the Access login page and signs in, as a person does. */
async function signInAtAccess(page: Page): Promise<void> {
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** A fresh browser context (its own cookies) with one page, and logs of what it requested. */
async function openBrowser() {
  const context = await newContext(browser);
  contexts.push(context);
  const requests: { method: string; url: string }[] = [];
  context.on('request', (r: BrowserRequest) => requests.push({ method: r.method(), url: r.url() }));
  const page = await context.newPage();
  return { context, page, requests, navigations: recordNavigations(page) };
}

const navigationsOf = new WeakMap<Page, Navigation[]>();

/** Every top-level document response of `page`, redirects included, in order. */
function recordNavigations(page: Page): Navigation[] {
  const navigations: Navigation[] = [];
  navigationsOf.set(page, navigations);
  page.on('response', (r: BrowserResponse) => {
    const request = r.request();
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      // An error page's words, for the failure message when a step stops there.
      const text = r.status() >= 400 ? r.text().then(visibleText, () => '') : Promise.resolve('');
      navigations.push({ method: request.method(), url: r.url(), status: r.status(), text });
    }
  });
  return navigations;
}

function visibleText(html: string): string {
  return html
    .replace(/<(title|style|script)[^>]*>[\s\S]*?<\/\1>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 400);
}

async function expectConsentPage(page: Page, clientName: string) {
  expect(await page.title()).toBe(`Connect ${clientName}?`);
  await page.getByRole('heading', { level: 1, name: `Connect ${clientName}?` }).waitFor();
  const text = await page.locator('body').innerText();
  expect(text).toContain(`${clientName} wants to use this MCP server on your behalf.`);
  expect(text).toContain('This app registered itself, so its name is not verified.');
  // The redirect host, where access goes, and the loopback warning that goes with it.
  expect(text).toMatch(/Access goes to\s+127\.0\.0\.1/);
  expect(text).toContain('Access will go to an app on this computer.');
  expect(text).toContain("Use this server's tools and data as you, through this gateway");
  expect(text).toContain('After you approve, you sign in with Cloudflare Access.');
  expect(await page.getByRole('button', { name: 'Approve' }).isVisible()).toBe(true);
  expect(await page.getByRole('button', { name: 'Deny' }).isVisible()).toBe(true);
}

async function expectLoginPage(page: Page) {
  await page.getByRole('heading', { level: 1, name: `Sign in to ${ACCESS_APP_NAME}` }).waitFor();
  const text = await page.locator('body').innerText();
  expect(text).toContain('Local stand-in for Cloudflare Access.');
  expect(text).toContain(EMAIL);
  expect(await page.getByLabel('Email').isVisible()).toBe(true);
  expect(await page.getByRole('button', { name: 'Sign in', exact: true }).isVisible()).toBe(true);
  expect(await page.getByRole('button', { name: 'Cancel' }).isVisible()).toBe(true);
}

/** Waits until the browser reaches the client's redirect URI; returns that URL. */
async function landOnRedirect(page: Page): Promise<URL> {
  await arriveAt(page, (url) => url.href.startsWith(redirect.uri), "the client's redirect URI");
  return new URL(page.url());
}

/** Waits until the browser reaches the Access login page. */
function arriveAtAccessLogin(page: Page): Promise<void> {
  return arriveAt(page, (url) => url.origin === accessOrigin && url.pathname.startsWith('/cdn-cgi/access/login/'), 'the Access login page');
}

/**
 * Waits for the main frame to reach a URL, failing at once (with what the page says) when the
 * browser stopped on an error page instead, rather than waiting out the timeout.
 */
async function arriveAt(page: Page, where: (url: URL) => boolean, what: string): Promise<void> {
  const failedAt = (url: URL) => {
    const last = navigationsOf.get(page)?.at(-1);
    return last !== undefined && last.status >= 400 && last.url === url.href ? last : undefined;
  };
  try {
    await page.waitForURL((url) => where(url) || failedAt(url) !== undefined, { timeout: ARRIVAL_TIMEOUT_MS });
  } catch (error) {
    throw new Error(`expected ${what} within ${ARRIVAL_TIMEOUT_MS} ms, still at ${page.url()}`, { cause: error });
  }
  const failed = failedAt(new URL(page.url()));
  if (!where(new URL(page.url())) && failed) {
    throw new Error(`expected ${what}, got ${failed.status} at ${failed.method} ${failed.url}: ${await failed.text}`);
  }
}

function expectNoStackTrace(text: string) {
  expect(text).not.toMatch(/\n\s+at [\w.<>]+ \(|(Type|Reference|Syntax)Error:|Error: |undefined|\[object Object\]/);
}

// --- the MCP client ------------------------------------------------------------------------

/** Dynamic client registration as a public client with the loopback redirect URI. */
async function register(name: string): Promise<oauth.Client> {
  const response = await oauth.dynamicClientRegistrationRequest(
    as,
    {
      client_name: name,
      redirect_uris: [redirect.uri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
    { [oauth.allowInsecureRequests]: true },
  );
  const client = await oauth.processDynamicClientRegistrationResponse(response);
  expect(client.client_id).toBeTruthy();
  return client;
}

interface PendingAuthorization {
  url: URL;
  state: string;
  verifier: string;
}

async function authorizationFor(client: oauth.Client): Promise<PendingAuthorization> {
  expect(as.authorization_endpoint).toBe(`${stack.urls.gateway}/authorize`);
  expect(as.code_challenge_methods_supported).toContain('S256');
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('redirect_uri', redirect.uri);
  url.searchParams.set('scope', 'mcp');
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('resource', stack.urls.mcp);
  return { url, state, verifier };
}

async function exchange(client: oauth.Client, auth: PendingAuthorization, landed: URL) {
  const params = oauth.validateAuthResponse(as, client, landed, auth.state);
  expect(params.get('code')).toBeTruthy();
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirect.uri, auth.verifier, {
    additionalParameters: { resource: stack.urls.mcp },
    [oauth.allowInsecureRequests]: true,
  });
  return oauth.processAuthorizationCodeResponse(as, client, response);
}

/** initialize, notifications/initialized, tools/list over Streamable HTTP with the token. */
async function listTools(accessToken: string): Promise<string[]> {
  let session: string | null = null;
  const rpc = async (message: object) => {
    const headers = new Headers({
      Authorization: `Bearer ${accessToken}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2025-06-18',
    });
    if (session) headers.set('Mcp-Session-Id', session);
    const response = await fetch(stack.urls.mcp, { method: 'POST', headers, body: JSON.stringify(message) });
    session = response.headers.get('Mcp-Session-Id') ?? session;
    return response;
  };

  const init = await rpc({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'browser-e2e', version: '1.0.0' } },
  });
  expect(init.status).toBe(200);
  expect(await readRpcResult(init, 1)).toHaveProperty('serverInfo');
  const initialized = await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' });
  expect([200, 202]).toContain(initialized.status);
  await initialized.body?.cancel();

  const list = await rpc({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
  expect(list.status).toBe(200);
  const result = (await readRpcResult(list, 2)) as { tools: { name: string }[] };
  return result.tools.map((t) => t.name);
}

/** The result of JSON-RPC call `id`, from a JSON body or an SSE stream. */
async function readRpcResult(response: Response, id: number): Promise<unknown> {
  const text = await response.text();
  const messages = (response.headers.get('Content-Type') ?? '').startsWith('text/event-stream')
    ? text
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => JSON.parse(line.slice(5)))
    : [JSON.parse(text)].flat();
  const reply = messages.find((m: { id?: unknown }) => m.id === id) as { result?: unknown; error?: unknown } | undefined;
  if (!reply || reply.error) throw new Error(`no result for call ${id}: ${text.slice(0, 500)}`);
  return reply.result;
}

// --- the client's loopback redirect URI ------------------------------------------------------

/**
 * What a native MCP client runs while a person signs in: a server on 127.0.0.1 whose /callback
 * receives the authorization response and tells the person they may close the tab. Its /forgery
 * page stands for any other site, posting the gateway's consent form cross-site.
 */
class LoopbackRedirect {
  readonly received: URL[] = [];

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  get uri(): string {
    return `${this.origin}/callback`;
  }

  forgeryUrl(action: string, handle: string): string {
    const url = new URL('/forgery', this.origin);
    url.searchParams.set('action', action);
    url.searchParams.set('handle', handle);
    return url.href;
  }

  static async start(): Promise<LoopbackRedirect> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const loopback = new LoopbackRedirect(server, `http://127.0.0.1:${port}`);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', loopback.origin);
      const send = (status: number, title: string, body: string) => {
        res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(`<!doctype html><html lang="en"><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:10vh auto;padding:0 1.25rem;color:#1f2328}</style>
<body>${body}</body></html>`);
      };
      if (url.pathname === '/callback') {
        loopback.received.push(url);
        const error = url.searchParams.get('error');
        if (error) {
          send(200, 'Not connected', `<h1>Not connected</h1><p>The sign-in ended with <code>${escapeHtml(error)}</code>.</p><p>You can close this tab.</p>`);
        } else {
          send(200, 'Connected', `<h1>Connected</h1><p>${escapeHtml(CLIENT_NAME)} received its authorization.</p><p>You can close this tab.</p>`);
        }
        return;
      }
      if (url.pathname === '/forgery') {
        send(
          200,
          'You won',
          `<h1>You won!</h1><form method="post" action="${escapeHtml(url.searchParams.get('action') ?? '')}">` +
            `<input type="hidden" name="handle" value="${escapeHtml(url.searchParams.get('handle') ?? '')}">` +
            `<button name="decision" value="approve">Claim your prize</button></form>`,
        );
        return;
      }
      send(404, 'Not found', '<h1>Not found</h1>');
    });
    return loopback;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
