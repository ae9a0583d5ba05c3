import { accessSignInUrl, newAccessLogin } from './access-url';
import { beginLogin, type LoginStore, type LoginTie } from './state';

/**
 * Sends the browser to Cloudflare Access for a sign-in of this purpose (a /connections one may
 * name the page to return to, sealed with the rest). For an MCP login, call
 * only after consent: the single-use, browser-bound `state` is created here, never earlier.
 */
export async function redirectToAccess(
  store: LoginStore,
  origin: string,
  ...[purpose, tie]: ['mcp-login', LoginTie] | ['connections', { returnTo: string }?]
): Promise<Response> {
  const data = newAccessLogin();
  const { state, headers } =
    purpose === 'connections'
      ? await beginLogin(store, purpose, { ...data, ...(tie ? { returnTo: tie.returnTo } : {}) })
      : await beginLogin(store, purpose, data, tie);
  const url = await accessSignInUrl(store.config.access, origin, state, data);
  headers.set('Location', url.href);
  headers.set('Cache-Control', 'no-store');
  return new Response(null, { status: 302, headers });
}
