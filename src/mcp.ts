import type { OAuthResourceContext } from '@cloudflare/workers-oauth-provider';
import { refusalFor } from './access/allowlist';
import type { Config } from './config';
import type { Identity } from './identity';
import { proxyMcpRequest } from './proxy/handler';
import { jsonRpcErrorResponse } from './proxy/jsonrpc-error';

/**
 * The MCP endpoint, reached only with a valid access token for this deployment's `/mcp`.
 * The allowlist is checked on every request, so removing someone from ALLOWED_EMAILS stops
 * tokens they already hold, not only their next login.
 */
export function mcpHandler(config: Config) {
  return {
    async fetch(request: Request, _env: Env, ctx: ExecutionContext): Promise<Response> {
      // workers-oauth-provider sets props (what the callback stored) and auth on the API route.
      const { props: identity, auth } = ctx as OAuthResourceContext<Identity>;
      if (refusalFor(config, identity.email) === 'not_allowed') {
        return jsonRpcErrorResponse('notAllowed', null, request.headers.get('Origin'));
      }
      return proxyMcpRequest(request, { config, identity, clientId: auth.clientId ?? 'unknown' }, ctx);
    },
  };
}
