/**
 * Issue #16, item 1, end to end: the UTF-7 body that read as no tools/call to the gateway (UTF-8)
 * and as `tools/call delete_repo` to an upstream honouring the charset. The upstream is the MCP
 * TypeScript SDK v1's own Express app (`express.json()`), run here; the gateway runs under
 * `wrangler dev` with `UPSTREAM_TOOLS={"deny":["delete_*"]}` in front of it at /mcp, and with no
 * policy at /open/mcp.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ExpressUpstream, startExpressUpstream } from './support/express-upstream';
import { connectWithOAuth } from './support/mcp-client';
import { type E2EStack, gatewayLogs, need, startE2EStack } from './support/stack';

const upstreamToken = `express-pat-${randomBytes(16).toString('hex')}`;
// "/" is "+AC8-" and "_" is "+AF8-" in UTF-7: read as UTF-8, the method is not tools/call at all.
const ATTACK = '{"jsonrpc":"2.0","id":1,"method":"tools+AC8-call","params":{"name":"delete+AF8-repo","arguments":{}}}';
const ATTACK_HEADERS = {
  'Content-Type': 'application/json; charset=utf-7',
  Accept: 'application/json, text/event-stream',
  'MCP-Protocol-Version': '2025-11-25',
};

let upstream: ExpressUpstream | undefined;
let stack: E2EStack | undefined;

beforeAll(async () => {
  upstream = await startExpressUpstream();
  stack = await startE2EStack({
    upstreamUrl: upstream.url,
    upstreamToken,
    gatewayVars: {
      UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }),
      UPSTREAMS: JSON.stringify({ open: { url: upstream.url, token: 'OPEN_TOKEN' } }),
      OPEN_TOKEN: upstreamToken,
    },
  });
});

afterAll(async () => {
  await Promise.allSettled([stack?.stop(), upstream?.stop()]);
  if (process.env.E2E_VERBOSE) console.error((stack?.logs ?? []).join('\n'));
});

/** The access token of a fresh SDK client signed in through the gateway at `mcpUrl`. */
async function tokenFor(mcpUrl: string): Promise<string> {
  const connected = await connectWithOAuth(mcpUrl, { email: 'alice@example.com' });
  await connected.client.close();
  return connected.provider.savedTokens?.access_token as string;
}

describe('issue #16: a UTF-7 tools/call against an Express MCP server', () => {
  it('runs the tool when sent straight to the server, which honours the charset (so the test can fail)', async () => {
    const before = need(upstream).deletions();
    const response = await fetch(need(upstream).url, { method: 'POST', headers: ATTACK_HEADERS, body: ATTACK });
    expect(response.status).toBe(200);
    expect(JSON.stringify(await response.json())).toContain('repository deleted');
    expect(need(upstream).deletions()).toBe(before + 1);
  });

  it('is refused by the gateway under a deny policy with 400 -32600, and the tool never runs', async () => {
    const { urls } = need(stack);
    const token = await tokenFor(urls.mcp);
    const before = need(upstream).deletions();
    const reached = need(upstream).authorizations.length;

    const response = await fetch(urls.mcp, { method: 'POST', headers: { ...ATTACK_HEADERS, Authorization: `Bearer ${token}` }, body: ATTACK });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: number } };
    expect(body.error.code).toBe(-32600);
    expect(need(upstream).deletions()).toBe(before);
    expect(need(upstream).authorizations.length, 'nothing of it reached the upstream').toBe(reached);
    await vi.waitFor(() => expect(gatewayLogs(need(stack)).some((l) => l.includes('"outcome":"invalid_message"'))).toBe(true));
  });

  it('is refused without a policy too, and the tool never runs', async () => {
    const openUrl = `${need(stack).urls.gateway}/open/mcp`;
    const token = await tokenFor(openUrl);
    const before = need(upstream).deletions();
    const response = await fetch(openUrl, { method: 'POST', headers: { ...ATTACK_HEADERS, Authorization: `Bearer ${token}` }, body: ATTACK });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32600);
    expect(need(upstream).deletions()).toBe(before);
  });

  it('still serves the SDK client through the gateway: the allowed tool runs, the denied one is refused', async () => {
    const connected = await connectWithOAuth(need(stack).urls.mcp, { email: 'alice@example.com' });
    try {
      const before = need(upstream).deletions();
      expect((await connected.client.listTools()).tools.map((t) => t.name)).toEqual(['get_issue']);
      expect(JSON.stringify((await connected.client.callTool({ name: 'get_issue', arguments: {} })).content)).toContain('issue #1');
      await expect(connected.client.callTool({ name: 'delete_repo', arguments: {} })).rejects.toThrow(/not available through this gateway/);
      expect(need(upstream).deletions()).toBe(before);
    } finally {
      await connected.client.close();
    }
  });
});
