import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Browser } from './fixtures/browser';
import { authorize, CLIENT_REDIRECT, consentHandle, decide, Gateway, ORIGIN, registerClient, signIn, type TestClient } from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
});
afterEach(() => {
  vi.unstubAllGlobals();
});

/** A readable page, and no redirect anywhere. */
async function expectPage(response: Response, status: number, text?: RegExp) {
  expect(response.status).toBe(status);
  expect(response.headers.get('Location')).toBeNull();
  expect(response.headers.get('Content-Type')).toContain('text/html');
  if (text) expect(await response.text()).toMatch(text);
}

/** Serves a client ID metadata document, as a client's own site would. */
function serveMetadata(url: string, document: Record<string, unknown>) {
  gateway.routes.set(url, () => Response.json(document, { headers: { 'Cache-Control': 'no-store' } }));
}

describe('authorization request validation', () => {
  it('shows an error page, and does not redirect, for an unregistered redirect URI', async () => {
    const client = await registerClient(gateway);
    const { response } = await authorize(gateway, new Browser(), { ...client, redirectUri: 'https://attacker.example/cb' });
    await expectPage(response, 400);
  });

  it('shows an error page for an unknown client', async () => {
    const { response } = await authorize(gateway, new Browser(), { clientId: 'nobody', redirectUri: CLIENT_REDIRECT });
    await expectPage(response, 400);
  });

  it('refuses plain PKCE', async () => {
    const client = await registerClient(gateway);
    const { response } = await authorize(gateway, new Browser(), client, { code_challenge_method: 'plain' });
    expectRefusedToClient(response, client);
  });

  it('refuses a public client that sends no PKCE challenge', async () => {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const query = new URLSearchParams({ response_type: 'code', client_id: client.clientId, redirect_uri: client.redirectUri, state: 's' });
    expectRefusedToClient(browser.receive(await gateway.fetch(`/authorize?${query}`)), client);
  });

  it('tolerates scopes it does not know, as claude.ai sends them, and grants mcp', async () => {
    const client = await registerClient(gateway);
    const { response } = await authorize(gateway, new Browser(), client, { scope: 'claudeai mcp' });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('Use this server&#39;s tools');
  });
});

/**
 * Once the client and its exact redirect URI are verified, RFC 6749 §4.1.2.1 sends the error to
 * the client (which is waiting for it) rather than leaving the person on our page.
 */
function expectRefusedToClient(response: Response, client: TestClient) {
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get('Location') ?? '');
  expect(`${location.origin}${location.pathname}`).toBe(client.redirectUri);
  expect(location.searchParams.get('error')).toBe('invalid_request');
  expect(location.searchParams.get('iss')).toBe(ORIGIN);
}

describe('client ID metadata documents', () => {
  const metadataUrl = 'https://client.example/oauth/metadata.json';

  it('names the verified publishing domain on the consent page', async () => {
    serveMetadata(metadataUrl, { client_id: metadataUrl, client_name: 'Example Agent', redirect_uris: [CLIENT_REDIRECT], token_endpoint_auth_method: 'none' });
    const { response } = await authorize(gateway, new Browser(), { clientId: metadataUrl, redirectUri: CLIENT_REDIRECT });
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('Published by <strong>client.example</strong>');
    expect(page).toContain('Example Agent');
  });

  it('signs in a client whose document lists a port-less loopback redirect, as Claude Code does', async () => {
    const claudeCode = 'https://claude.example/oauth/claude-code-client-metadata';
    serveMetadata(claudeCode, {
      client_id: claudeCode,
      client_name: 'Claude Code',
      redirect_uris: ['http://localhost/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const { tokens } = await signIn(gateway, { client: { clientId: claudeCode, redirectUri: 'http://localhost:45821/callback' } });
    expect(tokens.access_token).toBeTruthy();
  });

  it('refuses a document whose client_id differs from its URL', async () => {
    serveMetadata(metadataUrl, { client_id: 'https://other.example/metadata.json', client_name: 'Liar', redirect_uris: [CLIENT_REDIRECT] });
    const { response } = await authorize(gateway, new Browser(), { clientId: metadataUrl, redirectUri: CLIENT_REDIRECT });
    await expectPage(response, 400, /could not be verified/);
  });
});

describe('consent form', () => {
  async function consentPage() {
    const client = await registerClient(gateway);
    const browser = new Browser();
    const { response } = await authorize(gateway, browser, client);
    return { browser, handle: await consentHandle(response) };
  }

  it('refuses a post without its handle', async () => {
    const { browser } = await consentPage();
    await expectPage(await decide(gateway, browser, undefined), 400);
    expect(gateway.access.requests).toEqual([]);
  });

  it('refuses a handle posted from another browser', async () => {
    const { handle } = await consentPage();
    await expectPage(await decide(gateway, new Browser(), handle), 400, /different browser/);
  });

  it('refuses a handle used twice', async () => {
    const { browser, handle } = await consentPage();
    expect((await decide(gateway, browser, handle)).status).toBe(302);
    await expectPage(await decide(gateway, browser, handle), 400);
  });

  it('refuses a post from another site', async () => {
    const { browser, handle } = await consentPage();
    const response = await gateway.fetch('/authorize', {
      method: 'POST',
      headers: browser.headers({ 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://evil.example' }),
      body: new URLSearchParams({ handle, decision: 'approve' }),
    });
    await expectPage(response, 403);
  });

  it("lets the browser send this site's Origin with the form", async () => {
    // With `no-referrer` a browser posts `Origin: null`, which the check above must refuse.
    const { response } = await authorize(gateway, new Browser(), await registerClient(gateway));
    expect(response.headers.get('Referrer-Policy')).toBe('same-origin');
  });

  it('answers other methods with 405', async () => {
    const response = await gateway.fetch('/authorize', { method: 'PUT' });
    await expectPage(response, 405);
    expect(response.headers.get('Allow')).toBe('GET, POST');
  });
});
