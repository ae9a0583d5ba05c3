/**
 * The audit trail read in a browser (issue #20), end to end through `npm start`'s stack with its
 * local D1 migrated: the MCP SDK client works as Bob; Chromium, as Bob, sees those calls on
 * /connections, and as Alice (the demo admin) finds them on /connections/audit by tool.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newContext, screenshot } from './support/chromium';
import { connectWithOAuth } from './support/mcp-client';
import { type E2EStack, need, startE2EStack } from './support/stack';

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

async function signInToConnections(page: Page, email: string): Promise<void> {
  await page.goto(`${need(stack).urls.gateway}/connections`);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Your connections' }).waitFor();
}

describe('the audit trail in a browser', () => {
  it('shows a person the calls their MCP client just made, and the admin finds them by tool', async () => {
    const bob = await connectWithOAuth(need(stack).urls.mcp, { email: 'bob@example.com' });
    expect((await bob.client.callTool({ name: 'list_boards', arguments: {} })).isError).toBeFalsy();
    await bob.transport.terminateSession();
    await bob.client.close();

    const bobs = await (await newContext(need(browser))).newPage();
    await signInToConnections(bobs, 'bob@example.com');
    const activity = bobs.locator('table', { has: bobs.locator('th', { hasText: 'When (UTC)' }) });
    const call = activity.locator('tr', { hasText: 'list_boards' }).first();
    await call.waitFor();
    expect(await call.innerText()).toMatch(/e2e MCP SDK client[\s\S]*mcp[\s\S]*tools\/call list_boards[\s\S]*ok/);
    expect(await bobs.content()).not.toContain('/connections/audit');
    await screenshot(bobs, 'audit-own-activity.png', { readme: true });
    // Not an admin: everyone's trail is refused.
    expect((await bobs.goto(`${need(stack).urls.gateway}/connections/audit?person=alice%40example.com`))?.status()).toBe(403);

    const alices = await (await newContext(need(browser))).newPage();
    await signInToConnections(alices, 'alice@example.com');
    await alices.getByRole('link', { name: /audit trail/ }).click();
    await alices.getByRole('heading', { name: 'Audit trail' }).waitFor();
    await alices.getByLabel('Tool').fill('list_boards');
    await alices.getByRole('button', { name: 'Filter' }).click();
    await alices.waitForURL(/tool=list_boards/);
    const rows = alices.locator('tr', { hasText: 'list_boards' });
    await rows.first().waitFor();
    expect(await rows.filter({ hasText: 'bob@example.com' }).count()).toBeGreaterThan(0);
    expect(await alices.locator('tr', { hasText: 'sign in' }).count()).toBe(0);
    expect(await alices.locator('svg[aria-label="Calls per hour by outcome"] rect title').count()).toBeGreaterThan(0);
    await screenshot(alices, 'audit-admin.png', { readme: true });
  });
});
