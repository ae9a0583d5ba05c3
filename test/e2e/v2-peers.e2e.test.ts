/**
 * Issue #18: the MCP TypeScript SDK v2 on both sides of the gateway. The client
 * (`@modelcontextprotocol/client`) negotiates as Claude Code does (`server/discover` first) and
 * speaks 2026-07-28; the upstream (`@modelcontextprotocol/server`) is stateless and 2026-only;
 * everyone is read-only (`UPSTREAM_TOOLS`). The v1 SDK's client, which speaks 2025, meets the
 * same gateway: at `/both/mcp`, the same server's tools for 2025 clients too, and at `/mcp`,
 * where the 2026-only server refuses it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ProtocolError } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWithOAuth } from './support/mcp-client';
import { type ConnectedV2, connectV2WithOAuth } from './support/mcp-client-v2';
import { type E2EStack, gatewayLogs, need, startE2EStack } from './support/stack';
import { startV2Upstream, type V2Upstream } from './support/v2-upstream';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const upstreamToken = `v2-pat-${randomBytes(16).toString('hex')}`;

let upstream: V2Upstream | undefined;
let stack: E2EStack | undefined;
let v2: ConnectedV2 | undefined;

beforeAll(async () => {
  upstream = await startV2Upstream(upstreamToken);
  stack = await startE2EStack({
    upstreamUrl: upstream.url,
    upstreamToken,
    gatewayVars: {
      UPSTREAM_TOOLS: JSON.stringify({ readOnly: true }),
      UPSTREAMS: JSON.stringify({ both: { url: upstream.bothUrl, token: 'BOTH_TOKEN', tools: { readOnly: true } } }),
      BOTH_TOKEN: upstreamToken,
    },
  });
  v2 = await connectV2WithOAuth(stack.urls.mcp);
});

afterAll(async () => {
  await v2?.client.close().catch(() => {});
  await Promise.allSettled([stack?.stop(), upstream?.stop()]);
  if (process.env.E2E_VERBOSE) console.error((stack?.logs ?? []).join('\n'));
});

describe('MCP SDK v2 client and server through the gateway (2026-07-28)', () => {
  it('discovers the gateway, signs in, and speaks 2026-07-28 without a session', () => {
    const { client, provider, exchanges } = need(v2);
    expect(provider.authorizations).toBe(1);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    // The probe met the 401 first; after sign-in it was answered, and no initialize was sent.
    expect(exchanges.find((e) => e.rpc === 'server/discover')?.status).toBe(401);
    expect(exchanges.filter((e) => e.rpc === 'server/discover').at(-1)?.status).toBe(200);
    expect(exchanges.some((e) => e.rpc === 'initialize')).toBe(false);
  });

  it('calls a read-only tool first thing on a fresh gateway, asking for the annotations in 2026-07-28', async () => {
    const { client } = need(v2);
    // No tools/list has passed through the gateway yet: it must fetch the annotations itself.
    expect(upstream?.gatewayRequests).toEqual([]);
    const result = await client.callTool({ name: 'get_issue', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('works on 2026-07-28');
    expect(upstream?.gatewayRequests).toEqual([
      { method: 'tools/list', clientInfo: { name: 'mcp-oauth-gateway', version: PACKAGE_VERSION }, protocolVersion: '2026-07-28' },
    ]);
  });

  it('lists only the read-only tools', async () => {
    const { tools } = await need(v2).client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['count_up', 'get_issue']);
  });

  it('refuses a call of a tool that is not read-only with -32602, and the upstream never runs it', async () => {
    const refusal = await need(v2)
      .client.callTool({ name: 'create_issue', arguments: {} })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refusal).toBeInstanceOf(ProtocolError);
    expect((refusal as ProtocolError).code).toBe(-32602);
    expect(upstream?.creations()).toBe(0);
  });

  it('streams a progress notification before the result', async () => {
    const { client } = need(v2);
    const order: string[] = [];
    const result = client
      .callTool(
        { name: 'count_up', arguments: {} },
        {
          onprogress: (progress: { progress: number }) => {
            order.push(`progress ${progress.progress}`);
            // The upstream holds the result until now: a gateway that buffered would never get here.
            need(upstream).releaseCount();
          },
        },
      )
      .then((r) => {
        order.push('result');
        return r;
      });
    expect(JSON.stringify((await result).content)).toContain('counted to 2');
    expect(order).toEqual(['progress 1', 'result']);
  });

  it('delivers notifications/tools/list_changed on subscriptions/listen', async () => {
    const { client } = need(v2);
    const changed = new Promise<void>((resolve) => client.setNotificationHandler('notifications/tools/list_changed', () => resolve()));
    const subscription = await client.listen({ toolsListChanged: true });
    try {
      need(upstream).toolsChanged();
      await changed;
    } finally {
      await subscription.close();
    }
    // The gateway logged the stream like any request (issue #10), with its method.
    expect(gatewayLogs(need(stack)).some((l) => l.includes('"rpcMethod":"subscriptions/listen"'))).toBe(true);
  });
});

describe('MCP SDK v1 client (2025) against the same gateway', () => {
  it('connects to the upstream that also serves 2025, lists the read-only tools and calls one', async () => {
    const v1 = await connectWithOAuth(`${need(stack).urls.gateway}/both/mcp`, { email: 'bob@example.com' });
    try {
      // That server is stateless in 2025 too: no session.
      expect(v1.transport.sessionId).toBeUndefined();
      const { tools } = await v1.client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['count_up', 'get_issue']);
      expect(JSON.stringify((await v1.client.callTool({ name: 'get_issue', arguments: {} })).content)).toContain('issue #1');
      await expect(v1.client.callTool({ name: 'create_issue', arguments: {} })).rejects.toThrow(/not available through this gateway/);
    } finally {
      await v1.client.close().catch(() => {});
    }
  });

  it("gets the 2026-only server's refusal of initialize, passed through unchanged", async () => {
    const failed = await connectWithOAuth(need(stack).urls.mcp, { email: 'bob@example.com' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failed)).toMatch(/Unsupported protocol version|-32022/);
  });
});
