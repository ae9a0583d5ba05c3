import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scrubSecrets } from '../src/proxy';
import { callProxy, captureLogs, PAT, proxyConfig, readRest, readUntil, received, release, rpcPost, tag } from './fixtures/proxy';

/**
 * Issue #16: an upstream whose error pages echo the request (debug pages, some proxies) must not
 * hand the client the credential the gateway sent it. The `/echo/<status>/` upstream writes every
 * request header back into its body as JSON strings, HTML-escaped cells, percent-encoded links
 * and raw lines, and a Basic credential decoded.
 */

const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_issue', arguments: {} } };
/** A fixed header value with every character the escapings change. */
const TENANT_KEY = 'tenant-key/"quoted" & <tagged> + spaced \'7Qx9\'';

/** The spellings the echo upstream uses for a value: raw, JSON string, percent-encoded, HTML-escaped. */
function spellings(value: string): string[] {
  const html = value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' })[c] ?? c);
  return [...new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), html])];
}

function expectNoneOf(body: string, values: string[]): void {
  for (const value of values) {
    for (const spelling of spellings(value)) expect(body, `${JSON.stringify(spelling)} in the body`).not.toContain(spelling);
  }
}

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('issue #16: no credential in an upstream error body the gateway relays', () => {
  it.each([
    [500, 'json'],
    [500, 'html'],
    [400, 'json'],
    [400, 'html'],
    [502, 'text'],
  ])('takes the credential and fixed header values out of a %i %s page that echoes the request', async (status, format) => {
    const config = proxyConfig(`/echo/${status}/mcp`, { UPSTREAM_HEADERS: JSON.stringify({ 'X-Tenant-Key': TENANT_KEY }) });
    const t = tag();
    const response = await callProxy({ config, path: `/mcp?t=${t}&format=${format}`, init: rpcPost(call) });
    // The upstream did get them, and echoed them.
    expect((await received(t))[0]?.headers).toMatchObject({ authorization: `Bearer ${PAT}`, 'x-tenant-key': TENANT_KEY });

    expect(response.status).toBe(status);
    const body = await response.text();
    expectNoneOf(body, [`Bearer ${PAT}`, PAT, TENANT_KEY]);
    expect(body).toContain('[redacted]');
    // The rest of the page is the upstream's: still there, and a JSON error still parses.
    expect(body).toContain('test-mcp-client/1.0');
    if (format === 'json') expect(JSON.parse(body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
  });

  it('takes out a token whose characters every escaping changes, whole and alone', async () => {
    const token = "pat/with\"quote&<angle>+plus 'and' spaces";
    const config = proxyConfig('/echo/500/mcp', { UPSTREAM_TOKEN: token, UPSTREAM_AUTH_SCHEME: 'token' });
    for (const format of ['json', 'html', 'text']) {
      const response = await callProxy({ config, path: `/mcp?t=${tag()}&format=${format}`, init: rpcPost(call) });
      expectNoneOf(await response.text(), [`token ${token}`, token]);
    }
  });

  it('takes out a Basic credential, encoded and decoded', async () => {
    const password = 's3cret-password-42';
    const basic = btoa(`gateway-user:${password}`);
    const config = proxyConfig('/echo/500/mcp', { UPSTREAM_TOKEN: basic, UPSTREAM_AUTH_SCHEME: 'Basic' });
    for (const format of ['json', 'html', 'text']) {
      const response = await callProxy({ config, path: `/mcp?t=${tag()}&format=${format}`, init: rpcPost(call) });
      expectNoneOf(await response.text(), [basic, `gateway-user:${password}`, password]);
    }
  });

  it('does so under a tool policy too', async () => {
    const config = proxyConfig('/echo/500/mcp', { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) });
    const response = await callProxy({ config, path: `/mcp?t=${tag()}&format=html`, init: rpcPost(call) });
    expect(response.status).toBe(500);
    expectNoneOf(await response.text(), [PAT]);
  });

  it('cuts an error body at 64 KiB, leaving no piece of a credential at the cut', async () => {
    // The text page starts with `authorization: Bearer <PAT>` after the padding: put the cut 10
    // characters into the token.
    const pad = 64 * 1024 - 'authorization: Bearer '.length - 10;
    const response = await callProxy({ config: proxyConfig('/echo/500/mcp'), path: `/mcp?t=${tag()}&format=text&pad=${pad}`, init: rpcPost(call) });
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(body.length).toBeLessThanOrEqual(64 * 1024);
    expect(body.startsWith('ppp')).toBe(true);
    expect(body).not.toContain(PAT.slice(0, 10));
  });

  it('still streams a 2xx event stream: the first event arrives before the upstream finishes', async () => {
    const t = tag();
    const config = proxyConfig('/hold/mcp', { UPSTREAM_HEADERS: JSON.stringify({ 'X-Tenant-Key': TENANT_KEY }) });
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call) });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    expect(await readUntil(reader, '"progress":1}}\n\n')).not.toContain('"done":true');
    await release(t);
    expect(await readRest(reader)).toContain('"done":true');
  });
});

describe('issue #16: the spellings of a secret an error page may use', () => {
  const secret = 'k/"q" & <t>+s p';
  it.each([
    ['as sent', secret],
    ['JSON with every escape a serializer may choose', 'k\\/\\"q\\u0022 \\u0026 \\u003ct\\u003E\\u002bs\\u0020p'],
    ['Go templates (decimal entities)', 'k/&#34;q&#34; &amp; &lt;t&gt;+s p'],
    ['hex entities with leading zeros', 'k&#x2F;&#x0022;q&#X22; &#x26; &#x3c;t&#x3E;&#43;s&#32;p'],
    ['lowercase percent-encoding', 'k%2f%22q%22%20%26%20%3ct%3e%2bs%20p'],
    ['form encoding', 'k%2F%22q%22+%26+%3Ct%3E%2Bs+p'],
    ['JSON inside HTML', 'k\\/\\&quot;q\\&quot; &amp; &lt;t&gt;+s p'],
  ])('replaces it %s', (_, spelled) => {
    expect(scrubSecrets(`before ${spelled} after`, [secret], false)).toBe('before [redacted] after');
  });

  it('leaves text that only resembles it alone', () => {
    const text = 'k/"q" & <t>+s P, k/"q" & <t>-s p';
    expect(scrubSecrets(text, [secret], false)).toBe(text);
  });

  it("drops a cut body's last characters when they begin a secret, and only then", () => {
    expect(scrubSecrets('error: k%2F%22', [secret], true)).toBe('error: ');
    expect(scrubSecrets('error: k%2F%22', [secret], false)).toBe('error: k%2F%22');
    expect(scrubSecrets('error: none', [secret], true)).toBe('error: none');
  });
});
