import type { OAuthResourceContext } from '@cloudflare/workers-oauth-provider';
import type { Config, UpstreamConfig } from './config';
import type { Identity } from './identity';
import { refusalFor } from './permissions';
import { jsonRpcErrorResponse, proxyMcpRequest } from './proxy';
import { takesOwnTokens } from './upstreams';
import { TokenVault } from './vault';

/**
 * One upstream's MCP endpoint, reached only with a valid access token for its resource (the
 * resource server checked the audience). The allowlists are checked on every request, so removing
 * someone from ALLOWED_EMAILS or the upstream's `allowedEmails` stops tokens they already hold,
 * not only their next login.
 */
export function mcpHandler(config: Config, upstream: UpstreamConfig) {
  return {
    async fetch(request: Request, env: Env, ctx: OAuthResourceContext<Identity>): Promise<Response> {
      const { props: identity, auth } = ctx;
      if (refusalFor(config, upstream, identity) === 'not_allowed') {
        return jsonRpcErrorResponse('notAllowed', null, request.headers.get('Origin'));
      }
      const vault = takesOwnTokens(upstream) ? new TokenVault(env.OAUTH_KV, config.tokenKeys) : undefined;
      return proxyMcpRequest(request, { config, upstream, identity, clientId: auth.clientId ?? 'unknown', ...(vault ? { vault } : {}) }, ctx);
    },
  };
}
