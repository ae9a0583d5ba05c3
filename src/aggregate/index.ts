/**
 * An aggregate's MCP endpoint (`/<name>/mcp`, AGGREGATES): the gateway as an MCP server to the
 * client and an MCP client to each upstream it reaches. Reached only with a valid access token
 * for the aggregate's own resource.
 *
 * Kept light on purpose: the server behind it (server.ts) is imported on the first request to an
 * aggregate, and the MCP SDK it uses is a module of its own beside the bundle (sdk.ts), so a
 * Worker serving only plain proxies never compiles it. What is decided here, before the SDK: who
 * may use the gateway, and a 2025 client's session (its handle, its Durable Object).
 */
import type { OAuthResourceContext } from '@cloudflare/workers-oauth-provider';
import { auditDatabase, emit, flushTrail } from '../audit';
import type { AggregateConfig, Config } from '../config';
import type { Identity } from '../identity';
import { mayUseGateway } from '../permissions';
import { jsonRpcErrorResponse, withCors } from '../proxy';
import { endSession, isModernRevision, linkFor, takesOwnTokens } from '../upstreams';
import { TokenVault } from '../vault';
import type { SessionLinks } from './conversation';
import { type Member, membersFor } from './members';
import { newSession, type SessionOwner, sessionIdOf } from './session-handle';
import { forgetSession, forgetUpstreamSession, knownUpstreamSession, needsTouch, rememberOpen, rememberUpstreamSession } from './session-memory';
import { type AggregateSessions, openingRequest } from './sessions';
import { changeStream } from './watch';

export { AggregateSessions } from './sessions';

/** The resource server's handler for one aggregate (wired in src/oauth/servers.ts). */
export function aggregateHandler(config: Config, aggregate: AggregateConfig) {
  return {
    async fetch(request: Request, env: Env, ctx: OAuthResourceContext<Identity>): Promise<Response> {
      const { props: identity, auth } = ctx;
      const cors = request.headers.get('Origin');
      if (!mayUseGateway(config, identity)) return jsonRpcErrorResponse('notAllowed', null, cors);
      const clientId = auth.clientId ?? 'unknown';
      const vault = aggregate.upstreams.some(takesOwnTokens) ? new TokenVault(env.OAUTH_KV, config.tokenKeys) : undefined;
      let members: Promise<Member[]> | undefined;
      const membersOnce = () => {
        members ??= membersFor(config, aggregate, identity, vault);
        return members;
      };

      // 2025-era sessions: checked before anything else, and before any storage is asked.
      const owner: SessionOwner = { secret: config.cookieSecret, aggregate: aggregate.name, email: identity.email, clientId };
      const modern = isModernRevision(request.headers.get('MCP-Protocol-Version'));
      const handle = modern ? null : request.headers.get('Mcp-Session-Id');
      let sessions: SessionLinks | undefined;
      if (handle !== null) {
        const id = await sessionIdOf(handle, owner);
        if (id === undefined) return jsonRpcErrorResponse('unknownSession', null, cors);
        const stub = sessionObject(env, id);
        if (request.method === 'DELETE') {
          forgetSession(id);
          if (!(await stub.touch())) return jsonRpcErrorResponse('unknownSession', null, cors);
          return endClientSession(stub, await membersOnce(), ctx, cors);
        }
        if (needsTouch(id)) {
          if (!(await stub.touch())) {
            forgetSession(id);
            return jsonRpcErrorResponse('unknownSession', null, cors);
          }
          rememberOpen(id);
        }
        sessions = sessionLinks(id, stub);
        // The session's GET stream: the upstreams' list changes (the SDK serves 2025 clients statelessly, without one).
        if (request.method === 'GET') return withCorsOf(changeStream(await membersOnce(), { email: identity.email, sessions, signal: request.signal }), cors);
      }
      const opensSession = handle === null && !modern && request.method === 'POST' && (await isInitialize(request));

      const base = {
        email: identity.email,
        ...(identity.groups ? { groups: identity.groups } : {}),
        clientId,
        method: request.method,
        path: new URL(request.url).pathname,
        aggregate: aggregate.name,
      };
      let called = false;
      let callEnded = () => {};
      const { serveAggregate } = await import('./server');
      // The SDK serves 2025 clients statelessly: the session is the gateway's, so its header stays here.
      const headers = new Headers(request.headers);
      headers.delete('Mcp-Session-Id');
      let response = await serveAggregate(new Request(request, { headers }), {
        name: aggregate.name,
        title: aggregate.title,
        email: identity.email,
        origin: new URL(request.url).origin,
        signal: request.signal,
        sessions,
        members: membersOnce,
        onLeftOut: (member, reason) =>
          emit({ event: 'aggregate_upstream_left_out', aggregate: aggregate.name, upstream: member.upstream.name, email: identity.email, reason }),
        onCallStarted: () => {
          called = true;
          // A streamed call ends after the response is handed back: its trail row is written then.
          ctx.waitUntil(new Promise<void>((resolve) => (callEnded = resolve)).then(() => flushTrail(auditDatabase(env))));
        },
        onCall: (call) => {
          emit({
            event: 'mcp_proxy',
            time: new Date().toISOString(),
            ...base,
            upstream: call.upstream ?? aggregate.name,
            rpcMethod: call.rpcMethod,
            ...(call.tool === undefined ? {} : { tool: call.tool }),
            // The call's answer is in-band: its JSON-RPC error, if any, rides on a 200.
            status: 200,
            upstreamStatus: call.upstreamStatus,
            latencyMs: call.latencyMs,
            outcome: call.outcome,
          });
          callEnded();
        },
      });
      if (opensSession && response.ok) {
        const session = await newSession(owner);
        await sessionObject(env, session.id).begin();
        rememberOpen(session.id);
        response = new Response(response.body, response);
        response.headers.set('Mcp-Session-Id', session.handle);
      }
      response = withCorsOf(response, cors);
      // Every other request (initialize, discover, lists) gets one line naming the aggregate itself.
      if (!called) {
        emit({
          event: 'mcp_proxy',
          time: new Date().toISOString(),
          ...base,
          upstream: aggregate.name,
          rpcMethod: request.headers.get('Mcp-Method') ?? undefined,
          status: response.status,
          upstreamStatus: undefined,
          latencyMs: undefined,
          outcome: 'ok',
        });
      }
      return response;
    },
  };
}

function sessionObject(env: Env, id: string): DurableObjectStub<AggregateSessions> {
  return env.AGGREGATE_SESSIONS.get(env.AGGREGATE_SESSIONS.idFromName(id));
}

/** A client session's upstream sessions: what this isolate saw the object open, else the object (session-memory.ts). */
function sessionLinks(id: string, stub: DurableObjectStub<AggregateSessions>): SessionLinks {
  return {
    async open(member) {
      const name = member.upstream.name;
      const seen = knownUpstreamSession(id, name);
      if (seen) return { outcome: 'open', session: seen };
      const opening = await stub.open(openingRequest(member.upstream, member.credential?.header));
      if (opening.outcome === 'open') rememberUpstreamSession(id, name, opening.session);
      if (opening.outcome === 'unknown') forgetSession(id);
      return opening;
    },
    async forget(member, sessionId) {
      forgetUpstreamSession(id, member.upstream.name);
      await stub.forget(member.upstream.name, sessionId);
    },
  };
}

/** Whether a POST is one `initialize` (the only request that opens a 2025 session). */
async function isInitialize(request: Request): Promise<boolean> {
  if (!/^application\/json\s*(;|$)/i.test(request.headers.get('Content-Type') ?? '')) return false;
  try {
    const message: unknown = await request.clone().json();
    return typeof message === 'object' && message !== null && (message as { method?: unknown }).method === 'initialize';
  } catch {
    return false;
  }
}

/** DELETE of a client session: every upstream session it opened is ended, with the credential of each. */
async function endClientSession(stub: DurableObjectStub<AggregateSessions>, members: Member[], ctx: ExecutionContext, cors: string | null): Promise<Response> {
  const held = await stub.end();
  const ends = members.flatMap((member) => {
    const session = held[member.upstream.name];
    if (!session?.sessionId) return [];
    const link = { ...linkFor(member.upstream, member.credential?.header), timeoutMs: Math.min(member.upstream.timeoutMs, 10_000) };
    return [endSession(link, session.sessionId, session.revision)];
  });
  ctx.waitUntil(Promise.allSettled(ends));
  return new Response(null, { status: 204, headers: withCors(new Headers(), cors) });
}

/** Browser clients (MCP Inspector) read `Mcp-Session-Id` and `WWW-Authenticate` only when exposed, as the proxy does. */
function withCorsOf(response: Response, cors: string | null): Response {
  if (!cors) return response;
  const copy = new Response(response.body, response);
  withCors(copy.headers, cors);
  return copy;
}
