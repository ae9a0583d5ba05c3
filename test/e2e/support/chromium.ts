/**
 * Debian's Chromium, driven by playwright-core (which never downloads a browser of its own), set
 * up for a machine without network.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const SCREENSHOTS = join(REPO, 'test-results', 'e2e', 'screenshots');
const README_SCREENSHOTS = join(REPO, 'docs', 'screenshots');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium's own outbound connections (updates, sync,
// QUIC probes) are refused many at a time on a machine without network, and slow every page.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const VIEWPORT = { width: 900, height: 700 };

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** A fresh context (its own cookies): every step here takes well under a second. */
export async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-US' });
  context.setDefaultTimeout(15_000);
  return context;
}

/** Into test-results/e2e/screenshots; with UPDATE_SCREENSHOTS=1 and `readme`, also docs/screenshots for the README. */
export async function screenshot(page: Page, name: string, options: { readme?: boolean } = {}): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, name);
  await page.screenshot({ path, fullPage: true });
  if (options.readme && process.env.UPDATE_SCREENSHOTS === '1') {
    await mkdir(README_SCREENSHOTS, { recursive: true });
    await copyFile(path, join(README_SCREENSHOTS, name));
  }
}
