/**
 * The tokens a `/token` request names, read the way workers-oauth-provider 1.2.x reads the form
 * (its `parseTokenEndpointRequest`), so the token cache forgets whatever grant the library may
 * revoke. The library reads `grant_type=` (empty) as absent, i.e. an RFC 7009 revocation, and
 * revokes a grant on a replayed code, a refused refresh or a revoked refresh token: which of them
 * happens is the library's business, so every value of every naming field counts, whatever
 * `grant_type` says. Forgetting too much costs one KV read; forgetting too little keeps a
 * revoked token working in this isolate.
 */
import type { OriginGateway } from '../context';

/** The fields that carry one of the library's `<userId>:<grantId>:<secret>` strings. */
const NAMING_FIELDS = ['token', 'refresh_token', 'code'] as const;

/** Every non-empty value of `token`, `refresh_token` and `code` in a POST's form; none when the library would not read one. */
export async function tokensNamedIn(request: Request): Promise<string[]> {
  if (request.method !== 'POST' || !isFormContentType(request.headers.get('Content-Type'))) return [];
  let form: FormData;
  try {
    // The runtime's own form parser, as the library's `request.formData()`, on a copy it can still read.
    form = await request.clone().formData();
  } catch {
    // The library refuses this body too (400, malformed): nothing is revoked.
    return [];
  }
  return NAMING_FIELDS.flatMap((field) => form.getAll(field)).filter((value): value is string => typeof value === 'string' && value !== '');
}

/** The library's exact test: the media type before any `;`, trimmed, case-insensitive. */
function isFormContentType(contentType: string | null): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/**
 * The authorization server's own endpoints. Any token endpoint request may revoke a grant (RFC
 * 7009 revocation, a refused refresh, a replayed code), so each one forgets every grant its form
 * names from the token cache, before and after the library handles it: the grant's tokens stop
 * in this isolate at once.
 */
export async function handleAuthorizationServerRequest(request: Request, env: Env, ctx: ExecutionContext, gateway: OriginGateway): Promise<Response> {
  const named = new URL(request.url).pathname === '/token' ? await tokensNamedIn(request) : [];
  const forget = () => {
    for (const token of named) gateway.tokenCache.forgetGrantOf(token);
  };
  forget();
  try {
    return await gateway.authorizationServer.fetch(request, env, ctx);
  } finally {
    forget();
  }
}
