import type { OAuthResourceContext } from '@cloudflare/workers-oauth-provider';
import { refusalFor } from './access/allowlist';
import type { Config } from './config';
import type { Identity } from './identity';

/**
 * The MCP endpoint, reached only with a valid access token for this deployment's `/mcp`.
 * The allowlist is checked on every request, so removing someone from ALLOWED_EMAILS stops
 * tokens they already hold, not only their next login.
 */
export function mcpHandler(config: Config) {
  return {
    async fetch(_request: Request, _env: Env, ctx: ExecutionContext): Promise<Response> {
      // workers-oauth-provider sets props (what the callback stored) and auth on the API route.
      const { props: identity, auth } = ctx as OAuthResourceContext<Identity>;
      if (refusalFor(config, identity.email) === 'not_allowed') {
        return Response.json(
          { jsonrpc: '2.0', error: { code: -32001, message: 'This account is no longer allowed to use this server.' }, id: null },
          { status: 403 },
        );
      }
      // TODO(#3): replaced by the streaming proxy to the upstream.
      return Response.json({ email: identity.email, clientId: auth.clientId });
    },
  };
}
