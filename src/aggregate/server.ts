/**
 * The SDK-backed half of an aggregate's endpoint: the v2 MCP SDK's `createMcpHandler` serving
 * 2026-07-28 (stateless, `server/discover`) and 2025-era clients (its stateless fallback: each
 * request answered by a fresh instance) from one low-level `Server` whose handlers answer from
 * the upstreams (tools.ts). Loaded only on an aggregate's path (`await import('./server')` in
 * index.ts); the SDK itself is a module of its own beside the bundle (sdk.ts), so the plain
 * proxy neither compiles nor carries it.
 */
import type { ProtocolError, Server, ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import { GATEWAY_VERSION } from '../upstreams';
import type { LeftOutReason, SessionLinks } from './conversation';
import { LIST_TTL_MS } from './list-cache';
import type { Member } from './members';
import { getPrompt, listPrompts, type PromptOutcome } from './prompts';
import { rateLimitRefusal } from './rate-limit';
import type { Refusal } from './refusals';
import { listResources, type ReadOutcome, readResource, withExposedUris } from './resources';
import { type McpServerSdk, mcpServerSdk } from './sdk';
import { callTool, listTools, routeCall } from './tools';
import { watchMembers } from './watch';

/** What one request to the aggregate knows of its caller, and what it reports back for the log. */
export interface AggregateRequest {
  name: string;
  title: string | undefined;
  email: string;
  origin: string;
  /** The client's request signal: it going away abandons what the request still waits for upstream. */
  signal: AbortSignal;
  /** The client's 2025 session, when it has one (index.ts checked its handle). */
  sessions: SessionLinks | undefined;
  /** The person's members, read once per request and only when a handler needs them. */
  members: () => Promise<Member[]>;
  onLeftOut: (member: Member, reason: LeftOutReason) => void;
  /** Called as a `tools/call` starts (its answer may stream on after the response is handed back). */
  onCallStarted: () => void;
  /** Called when a call ends, however it ended: the log line names the upstream and its tool. */
  onCall: (call: CallReport) => void;
}

export interface CallReport {
  /** `tools/call`, `prompts/get` or `resources/read`: what went to one upstream. */
  rpcMethod: string;
  upstream: string | undefined;
  /** The upstream's own tool name (a refused call: the name the client sent); undefined for prompts and resources. */
  tool: string | undefined;
  upstreamStatus: number | undefined;
  latencyMs: number;
  outcome: string;
}

/** Serves one request to the aggregate. */
export async function serveAggregate(request: Request, state: AggregateRequest): Promise<Response> {
  const sdk = await mcpServerSdk();
  // One handler per request: every instance it makes closes over this person's state, and a
  // `subscriptions/listen` stream's bus watches this person's upstreams while it is open.
  const handler = sdk.createMcpHandler(() => aggregateServer(state, sdk), { legacy: 'stateless', responseMode: 'auto', bus: upstreamsBus(state) });
  return handler.fetch(request);
}

/**
 * The bus the SDK's `subscriptions/listen` streams subscribe to: while at least one is open, the
 * members' upstreams are watched (watch.ts), and each list change they report is published.
 */
function upstreamsBus(state: AggregateRequest): ServerEventBus {
  const listeners = new Set<(event: ServerEvent) => void>();
  let stop: AbortController | undefined;
  const publish = (event: ServerEvent) => {
    for (const listener of [...listeners]) listener(event);
  };
  return {
    publish,
    subscribe(listener) {
      listeners.add(listener);
      if (!stop) {
        const controller = new AbortController();
        stop = controller;
        const signal = AbortSignal.any([controller.signal, state.signal]);
        void state
          .members()
          .then((members) =>
            watchMembers(members, {
              email: state.email,
              sessions: state.sessions,
              signal,
              onChange: (kind) => publish({ kind: kind === 'resources/templates/list' ? 'resources_list_changed' : PUBLISHED[kind] }),
            }),
          )
          .catch(() => {});
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          stop?.abort();
          stop = undefined;
        }
      };
    },
  };
}

function aggregateServer(state: AggregateRequest, sdk: McpServerSdk): Server {
  const protocolError = (refusal: Refusal & { data?: unknown }): ProtocolError => new sdk.ProtocolError(refusal.code, refusal.message, refusal.data);
  /** A prompt or resource request answered by the one upstream its name or URI names, and reported. */
  const fromOneUpstream = async (
    rpcMethod: string,
    refused: string,
    request: AbortSignal,
    run: (members: Member[], options: ReturnType<typeof requestOptions>) => Promise<PromptOutcome | ReadOutcome>,
  ): Promise<never> => {
    const started = Date.now();
    state.onCallStarted();
    const got = await reported(state, async () => run(await state.members(), requestOptions(state, request)), rpcMethod, refused, started);
    if (!got.ok) throw protocolError(got.refusal);
    return got.result as never;
  };
  const server = new sdk.Server(
    { name: state.name, ...(state.title ? { title: state.title } : {}), version: GATEWAY_VERSION },
    {
      capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true } },
      // A list filtered per person may be cached by that person's client only, as long as the gateway keeps it.
      cacheHints: { 'tools/list': PRIVATE_LIST, 'prompts/list': PRIVATE_LIST, 'resources/list': PRIVATE_LIST, 'resources/templates/list': PRIVATE_LIST },
    },
  );

  server.setRequestHandler('tools/list', async (_request, ctx) => {
    const tools = await listTools(await state.members(), listOptions(state, ctx.mcpReq.signal));
    // The whole list in one page: the upstreams' pages were followed already.
    return { tools } as never;
  });

  server.setRequestHandler('tools/call', async (call, ctx) => {
    const started = Date.now();
    state.onCallStarted();
    // Filled in as the call goes; reported however it ends (an unexpected throw included).
    const report: CallReport = {
      rpcMethod: 'tools/call',
      upstream: undefined,
      tool: call.params.name,
      upstreamStatus: undefined,
      latencyMs: 0,
      outcome: 'unreachable',
    };
    try {
      const options = requestOptions(state, ctx.mcpReq.signal);
      const route = await routeCall(await state.members(), call.params.name, options);
      report.upstream = route.member?.upstream.name;
      if (!route.ok) {
        report.outcome = REFUSAL_OUTCOMES[route.refusal.code] ?? 'tool_refused';
        throw protocolError(route.refusal);
      }
      const { member, tool } = route;
      report.tool = tool;
      const limited = await rateLimitRefusal(member, state.email);
      if (limited) {
        report.outcome = 'rate_limited';
        throw protocolError(limited);
      }
      const called = await callTool(member, tool, call.params as unknown as Record<string, unknown>, {
        ...options,
        onNotification: (notification) => {
          // Related to this request: the transport answers on an event stream from here on.
          void ctx.mcpReq.notify(notification as Parameters<typeof ctx.mcpReq.notify>[0]).catch(() => {});
        },
      });
      report.upstreamStatus = called.upstreamStatus;
      report.outcome = called.ok ? 'ok' : called.outcome;
      if (!called.ok) throw protocolError(called.refusal);
      // Resource links and embedded resources in the result are named as the aggregate serves them.
      return withExposedUris(member.upstream.name, called.result, 'content') as never;
    } finally {
      state.onCall({ ...report, latencyMs: Date.now() - started });
    }
  });

  server.setRequestHandler('prompts/list', async (_request, ctx) => {
    const prompts = await listPrompts(await state.members(), listOptions(state, ctx.mcpReq.signal));
    return { prompts } as never;
  });

  server.setRequestHandler('prompts/get', (get, ctx) =>
    fromOneUpstream('prompts/get', 'prompt_refused', ctx.mcpReq.signal, (members, options) =>
      getPrompt(members, get.params as unknown as Record<string, unknown>, options),
    ),
  );

  for (const kind of ['resources/list', 'resources/templates/list'] as const) {
    server.setRequestHandler(kind, async (_request, ctx) => {
      const items = await listResources(await state.members(), kind, listOptions(state, ctx.mcpReq.signal));
      return (kind === 'resources/list' ? { resources: items } : { resourceTemplates: items }) as never;
    });
  }

  server.setRequestHandler('resources/read', (read, ctx) =>
    fromOneUpstream('resources/read', 'resource_refused', ctx.mcpReq.signal, (members, options) =>
      readResource(members, read.params as unknown as Record<string, unknown>, options),
    ),
  );

  return server;
}

const PUBLISHED = { 'tools/list': 'tools_list_changed', 'prompts/list': 'prompts_list_changed', 'resources/list': 'resources_list_changed' } as const;

const PRIVATE_LIST = { ttlMs: LIST_TTL_MS, cacheScope: 'private' } as const;

/** Runs a prompt or resource request, and reports it however it ends (an unexpected throw included). */
async function reported<T extends { ok: boolean; member?: Member | undefined; refusal?: Refusal }>(
  state: AggregateRequest,
  run: () => Promise<T>,
  rpcMethod: string,
  refused: string,
  started: number,
): Promise<T> {
  let got: T | undefined;
  try {
    got = await run();
    return got;
  } finally {
    const report = got
      ? reportOf(got, rpcMethod, refused)
      : { rpcMethod, upstream: undefined, tool: undefined, upstreamStatus: undefined, outcome: 'unreachable' };
    state.onCall({ ...report, latencyMs: Date.now() - started });
  }
}

/** The log's report of a prompt or resource request, by how it ended. */
function reportOf(got: { ok: boolean; member?: Member | undefined; refusal?: Refusal }, rpcMethod: string, refused: string): Omit<CallReport, 'latencyMs'> {
  const outcome = got.ok || !got.refusal ? 'ok' : (REFUSAL_OUTCOMES[got.refusal.code] ?? (got.refusal.code === -32602 ? refused : 'ok'));
  return { rpcMethod, upstream: got.member?.upstream.name, tool: undefined, upstreamStatus: undefined, outcome };
}

/** What a request asks of the upstreams: ended by the client going away or by the SDK's own cancellation. */
function requestOptions(state: AggregateRequest, request: AbortSignal) {
  return { email: state.email, origin: state.origin, signal: AbortSignal.any([request, state.signal]), sessions: state.sessions };
}

/** A list's: the same, and where a left-out upstream is reported. */
function listOptions(state: AggregateRequest, request: AbortSignal) {
  return { ...requestOptions(state, request), onLeftOut: state.onLeftOut };
}

/** The log's outcome for a call the gateway refused before it went upstream, by the refusal's code. */
const REFUSAL_OUTCOMES: Readonly<Record<number, string>> = {
  [-32007]: 'no_upstream_credential',
  [-32003]: 'upstream_refused_credential',
  [-32004]: 'unreachable',
  [-32005]: 'timeout',
};
