/**
 * People's own upstream tokens, end to end: the demo notes upstream takes each person's token,
 * which the gateway asks for after the Access sign-in. Chromium is the person for the pages;
 * the MCP TypeScript SDK is the client.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_NOTES_TOKENS } from '../../dev/stack.mjs';
import { launchChromium, newContext, screenshot } from './support/chromium';
import { connectWithOAuth, REDIRECT_URI } from './support/mcp-client';
import { Recorder } from './support/recorder';
import { type E2EStack, gatewayLogs, need, startE2EStack } from './support/stack';

const [ALICE_TOKEN = '', BOB_TOKEN = ''] = DEMO_NOTES_TOKENS;

let stack: E2EStack | undefined;
let browser: Browser | undefined;
beforeAll(async () => {
  const started = await Promise.allSettled([startE2EStack().then((s) => (stack = s)), launchChromium().then((b) => (browser = b))]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
});
afterAll(async () => {
  await Promise.allSettled([browser?.close(), stack?.stop()]);
});

const notesUrl = () => need(stack).connectors.find((c) => c.name === 'notes')?.url ?? '';

/** A person in Chromium: approves, signs in at Access as `email`, then whatever `atTokenPage` does. */
async function browse(page: Page, email: string, atTokenPage: (page: Page) => Promise<void>) {
  // The client's redirect URI: answered here, so nothing needs to listen on it.
  await page.route(`${REDIRECT_URI}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Connected</h1>' }));
  return async (authorizationUrl: URL): Promise<URL> => {
    await page.goto(authorizationUrl.href);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Your token for Notes' }).waitFor();
    await atTokenPage(page);
    await page.waitForURL((url) => url.href.startsWith(REDIRECT_URI));
    return new URL(page.url());
  };
}

describe("people's own tokens", () => {
  it('asks in the browser for a token, refuses a wrong one, takes the right one; the upstream then sees that person’s token', async () => {
    const context = await newContext(need(browser));
    const page = await context.newPage();
    const recorder = new Recorder();
    const alice = await connectWithOAuth(notesUrl(), {
      recorder,
      browse: await browse(page, 'alice@example.com', async (tokenPage) => {
        await screenshot(tokenPage, 'token-page.png', { readme: true });
        const field = tokenPage.getByLabel('Token');
        expect(await field.getAttribute('type')).toBe('password');
        await field.fill('demo-notes-wrong-0000');
        await tokenPage.getByRole('button', { name: 'Save and continue' }).click();
        await tokenPage.getByText('That token was refused by Notes').waitFor();
        expect(await tokenPage.content()).not.toContain('demo-notes-wrong-0000');
        await tokenPage.getByLabel('Token').fill(ALICE_TOKEN);
        await tokenPage.getByRole('button', { name: 'Save and continue' }).click();
      }),
    });
    const whoami = await alice.client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(whoami.content)).toContain(`ending in ${ALICE_TOKEN.slice(-4)}`);

    // A second person through the same upstream, with their own token (headless this time).
    const bob = await connectWithOAuth(notesUrl(), { recorder, email: 'bob@example.com', ownTokens: [BOB_TOKEN] });
    const bobs = await bob.client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(bobs.content)).toContain(`ending in ${BOB_TOKEN.slice(-4)}`);
    await alice.client.callTool({ name: 'add_note', arguments: { text: 'only alice sees this' } });
    expect(JSON.stringify((await bob.client.callTool({ name: 'list_notes', arguments: {} })).content)).not.toContain('only alice');

    // /connections: Alice signs in, sees her token by its last four, and disconnects the app.
    await page.goto(`${need(stack).urls.gateway}/connections`);
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Your connections' }).waitFor();
    const text = await page.locator('body').innerText();
    expect(text).toContain(`ending in ${ALICE_TOKEN.slice(-4)}`);
    expect(text).toContain('e2e MCP SDK client');
    expect(await page.content()).not.toContain(ALICE_TOKEN);
    await screenshot(page, 'connections.png', { readme: true });
    const notesSection = page.locator('h2', { hasText: 'Notes' });
    await notesSection.waitFor();
    const row = page.locator('tr', { hasText: 'e2e MCP SDK client' }).first();
    await row.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByText('The app was disconnected').waitFor();

    // Alice's client is out at once: its token gets 401. Bob's goes on.
    const stale = await fetch(notesUrl(), {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${alice.provider.savedTokens?.access_token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(stale.status).toBe(401);
    expect((await bob.client.callTool({ name: 'whoami', arguments: {} })).isError).toBeFalsy();

    await Promise.allSettled([alice.client.close(), bob.client.close(), context.close()]);
    await recorder.expectNever(ALICE_TOKEN);
    await recorder.expectNever(BOB_TOKEN);
    expect(gatewayLogs(need(stack)).filter((line) => line.includes(ALICE_TOKEN) || line.includes(BOB_TOKEN) || line.includes('demo-notes-wrong'))).toEqual([]);
  });
});
