/**
 * An aggregate's MCP endpoint (`/<name>/mcp`, AGGREGATES): the gateway as an MCP server to the
 * client and an MCP client to each upstream it reaches. Reached only with a valid access token
 * for the aggregate's own resource.
 *
 * Kept light on purpose: the MCP SDK behind it (server.ts) is imported on the first request to an
 * aggregate, so a Worker serving only plain proxies never evaluates it (esbuild turns the dynamic
 * import into a lazily initialised module of the same bundle).
 */
import type { OAuthResourceContext } from '@cloudflare/workers-oauth-provider';
import { auditDatabase, emit, flushTrail } from '../audit';
import type { AggregateConfig, Config } from '../config';
import type { Identity } from '../identity';
import { mayUseGateway } from '../permissions';
import { jsonRpcErrorResponse } from '../proxy';
import { takesOwnTokens } from '../upstreams';
import { TokenVault } from '../vault';
import { type Member, membersFor } from './members';

/** The resource server's handler for one aggregate (wired in src/oauth/servers.ts). */
export function aggregateHandler(config: Config, aggregate: AggregateConfig) {
  return {
    async fetch(request: Request, env: Env, ctx: OAuthResourceContext<Identity>): Promise<Response> {
      const { props: identity, auth } = ctx;
      if (!mayUseGateway(config, identity)) return jsonRpcErrorResponse('notAllowed', null, request.headers.get('Origin'));
      const vault = aggregate.upstreams.some(takesOwnTokens) ? new TokenVault(env.OAUTH_KV, config.tokenKeys) : undefined;
      let members: Promise<Member[]> | undefined;
      const base = {
        email: identity.email,
        ...(identity.groups ? { groups: identity.groups } : {}),
        clientId: auth.clientId ?? 'unknown',
        method: request.method,
        path: new URL(request.url).pathname,
        aggregate: aggregate.name,
      };
      let called = false;
      let callEnded = () => {};
      const { serveAggregate } = await import('./server');
      const response = await serveAggregate(request, {
        name: aggregate.name,
        title: aggregate.title,
        email: identity.email,
        origin: new URL(request.url).origin,
        members: () => {
          members ??= membersFor(config, aggregate, identity, vault);
          return members;
        },
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
            rpcMethod: 'tools/call',
            tool: call.tool,
            // The call's answer is in-band: its JSON-RPC error, if any, rides on a 200.
            status: 200,
            upstreamStatus: call.upstreamStatus,
            latencyMs: call.latencyMs,
            outcome: call.outcome,
          });
          callEnded();
        },
      });
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
