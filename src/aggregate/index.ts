/**
 * An aggregate's MCP endpoint (`/<name>/mcp`, AGGREGATES): the gateway as an MCP server to the
 * client and an MCP client to each upstream it reaches. Reached only with a valid access token
 * for the aggregate's own resource.
 */
import type { OAuthResourceContext } from '@cloudflare/workers-oauth-provider';
import type { AggregateConfig, Config } from '../config';
import type { Identity } from '../identity';

/** The resource server's handler for one aggregate (wired in src/oauth/servers.ts). */
export function aggregateHandler(_config: Config, _aggregate: AggregateConfig) {
  return {
    async fetch(_request: Request, _env: Env, _ctx: OAuthResourceContext<Identity>): Promise<Response> {
      // Replaced by the aggregate server (issue #21); until then the path answers a JSON-RPC error.
      return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32601, message: 'aggregates are not served yet' } }, { status: 501 });
    },
  };
}
