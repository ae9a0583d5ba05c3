/**
 * The SDK-backed half of an aggregate's endpoint: the v2 MCP SDK's `createMcpHandler` serving
 * 2026-07-28 (stateless, `server/discover`) and 2025-era clients (its stateless fallback: each
 * request answered by a fresh instance) from one low-level `Server` whose handlers answer from
 * the upstreams (tools.ts). Loaded only on an aggregate's path (`await import('./server')` in
 * index.ts), so the plain proxy never evaluates the SDK.
 */
import { createMcpHandler, ProtocolError, Server } from '@modelcontextprotocol/server';
import { GATEWAY_VERSION } from '../upstreams';
import { LIST_TTL_MS } from './list-cache';
import type { Member } from './members';
import { rateLimitRefusal } from './rate-limit';
import type { Refusal } from './refusals';
import { callTool, type LeftOutReason, listTools, routeCall } from './tools';

/** What one request to the aggregate knows of its caller, and what it reports back for the log. */
export interface AggregateRequest {
  name: string;
  title: string | undefined;
  email: string;
  origin: string;
  /** The person's members, read once per request and only when a handler needs them. */
  members: () => Promise<Member[]>;
  onLeftOut: (member: Member, reason: LeftOutReason) => void;
  /** Called as a `tools/call` starts (its answer may stream on after the response is handed back). */
  onCallStarted: () => void;
  /** Called when a call ends, however it ended: the log line names the upstream and its tool. */
  onCall: (call: CallReport) => void;
}

export interface CallReport {
  upstream: string | undefined;
  tool: string;
  upstreamStatus: number | undefined;
  latencyMs: number;
  outcome: string;
}

/** Serves one request to the aggregate. */
export async function serveAggregate(request: Request, state: AggregateRequest): Promise<Response> {
  // One handler per request: every instance it makes closes over this person's state.
  const handler = createMcpHandler(() => aggregateServer(request, state), { legacy: 'stateless', responseMode: 'auto' });
  return handler.fetch(request);
}

function aggregateServer(request: Request, state: AggregateRequest): Server {
  const server = new Server(
    { name: state.name, ...(state.title ? { title: state.title } : {}), version: GATEWAY_VERSION },
    {
      capabilities: { tools: { listChanged: true } },
      // A list filtered per person may be cached by that person's client only, as long as the gateway keeps it.
      cacheHints: { 'tools/list': { ttlMs: LIST_TTL_MS, cacheScope: 'private' } },
    },
  );

  server.setRequestHandler('tools/list', async (_request, ctx) => {
    const tools = await listTools(await state.members(), {
      email: state.email,
      origin: state.origin,
      signal: AbortSignal.any([ctx.mcpReq.signal, request.signal]),
      onLeftOut: state.onLeftOut,
    });
    // The whole list in one page: the upstreams' pages were followed already.
    return { tools } as never;
  });

  server.setRequestHandler('tools/call', async (call, ctx) => {
    const started = Date.now();
    state.onCallStarted();
    const signal = AbortSignal.any([ctx.mcpReq.signal, request.signal]);
    const { name } = call.params;
    const options = { email: state.email, origin: state.origin, signal };
    const route = await routeCall(await state.members(), name, options);
    if (!route.ok) {
      const outcome = REFUSAL_OUTCOMES[route.refusal.code] ?? 'tool_refused';
      state.onCall({ upstream: route.member?.upstream.name, tool: name, upstreamStatus: undefined, latencyMs: Date.now() - started, outcome });
      throw protocolError(route.refusal);
    }
    const { member, tool } = route;
    const limited = await rateLimitRefusal(member, state.email);
    if (limited) {
      state.onCall({ upstream: member.upstream.name, tool, upstreamStatus: undefined, latencyMs: Date.now() - started, outcome: 'rate_limited' });
      throw protocolError(limited);
    }
    const params = call.params as unknown as Record<string, unknown>;
    const called = await callTool(member, tool, params, {
      ...options,
      onNotification: (notification) => {
        // Related to this request: the transport answers on an event stream from here on.
        void ctx.mcpReq.notify(notification as Parameters<typeof ctx.mcpReq.notify>[0]).catch(() => {});
      },
    });
    const outcome = called.ok ? 'ok' : called.outcome;
    state.onCall({ upstream: member.upstream.name, tool, upstreamStatus: called.upstreamStatus, latencyMs: Date.now() - started, outcome });
    if (!called.ok) throw protocolError(called.refusal);
    return called.result as never;
  });

  return server;
}

/** The log's outcome for a call the gateway refused before it went upstream, by the refusal's code. */
const REFUSAL_OUTCOMES: Readonly<Record<number, string>> = {
  [-32007]: 'no_upstream_credential',
  [-32003]: 'upstream_refused_credential',
  [-32004]: 'unreachable',
  [-32005]: 'timeout',
};

function protocolError(refusal: Refusal & { data?: unknown }): ProtocolError {
  return new ProtocolError(refusal.code, refusal.message, refusal.data);
}
