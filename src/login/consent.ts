import { AuthorizationError, type AuthRequest, CimdFetchError, type OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { emit } from '../audit';
import { type Config, resourceLabel, upstreamLabel } from '../config';
import type { BrowserLeg } from '../context';
import { isCrossSitePost } from '../lib';
import { PageError } from '../pages';
import { GRANTED_SCOPES } from '../permissions';
import { redirectToAccess } from '../sign-in';
import { renderConsentPage } from './consent-page';

/**
 * /authorize. GET validates the client's request and shows the consent page (or, for a client
 * this browser already approved, goes straight to Access); POST takes the decision. Consent
 * always comes before the Access redirect: the confused-deputy rule for a proxy with one
 * upstream client ID.
 */
export async function handleAuthorize(request: Request, leg: BrowserLeg): Promise<Response> {
  const { helpers, gateway, config } = leg;
  const origin = new URL(request.url).origin;
  const remember = { secret: config.cookieSecret, ...approvalBinding(config) };

  if (request.method === 'GET') {
    const authRequest = await parseAuthRequest(request, helpers);
    if (authRequest instanceof Response) return authRequest;
    if (await helpers.isConsentRemembered(request, authRequest, remember)) {
      return redirectToAccess(leg, origin, 'mcp-login', { request: authRequest });
    }
    const details = await describeClient(helpers, authRequest);
    const resource = gateway.resourceFor(authRequest.resource);
    const consent = await helpers.beginConsent(authRequest);
    // An aggregate's consent names every upstream a token for it reaches: that is what is granted.
    const reaches = resource?.kind === 'aggregate' ? resource.upstreams.map((u) => upstreamLabel(u) ?? u.name) : [];
    return renderConsentPage(details, resource && resourceLabel(resource), consent.handle, consent.headers, reaches);
  }

  if (request.method === 'POST') {
    const { handle, decision } = await readDecision(request, origin);
    try {
      if (decision === 'deny') {
        const denied = await helpers.denyConsent(request, handle);
        emit({ event: 'consent_denied', clientId: denied.request.clientId, upstream: gateway.resourceFor(denied.request.resource)?.name });
        return new Response(null, { status: 302, headers: denied.headers });
      }
      const approved = await helpers.approveConsent(request, handle, { scope: GRANTED_SCOPES, remember });
      emit({ event: 'consent_approved', clientId: approved.request.clientId, upstream: gateway.resourceFor(approved.request.resource)?.name });
      return await redirectToAccess(leg, origin, 'mcp-login', approved);
    } catch (error) {
      if (!(error instanceof AuthorizationError)) throw error;
      throw new PageError('stale_link', `consent refused: ${error.code}: ${error.description}`, { cause: error });
    }
  }

  throw new PageError('method_not_allowed', `${request.method} /authorize`, { headers: new Headers({ Allow: 'GET, POST' }) });
}

/**
 * What a remembered approval is bound to beyond the client, redirect URI and resource (the
 * library's key): with aggregates, what each one reaches. An approval names the upstreams it
 * grants, so once an aggregate reaches others, people are asked again. The binding is the whole
 * AGGREGATES membership, since the approval is stored before its resource is known; without
 * aggregates there is none, and approvals remembered so far stay valid.
 */
function approvalBinding(config: Config): { subject?: string } {
  if (config.aggregates.length === 0) return {};
  return { subject: `aggregates:${JSON.stringify(config.aggregates.map((a) => [a.name, a.upstreams.map((u) => u.name)]))}` };
}

/** The validated request, or the error redirect when the library vouches for the redirect URI. */
async function parseAuthRequest(request: Request, helpers: OAuthHelpers): Promise<AuthRequest | Response> {
  let parsed: AuthRequest;
  try {
    parsed = await helpers.parseAuthRequest(request);
  } catch (error) {
    // RFC 6749 §4.1.2.1: redirect errors only to a verified redirect_uri, which the library
    // signals by setting `redirectTo`; anything else is shown here and never redirected.
    if (error instanceof AuthorizationError && error.redirectTo) {
      return new Response(null, { status: 302, headers: { Location: error.redirectTo, 'Cache-Control': 'no-store' } });
    }
    if (error instanceof AuthorizationError) {
      throw new PageError('invalid_request', `authorize refused: ${error.code}: ${error.description}`, { cause: error, detail: error.description });
    }
    if (error instanceof CimdFetchError) throw cimdPageError(error);
    throw error;
  }
  return { ...parsed, scope: GRANTED_SCOPES };
}

async function describeClient(helpers: OAuthHelpers, authRequest: AuthRequest) {
  try {
    return await helpers.describeConsent(authRequest);
  } catch (error) {
    if (error instanceof CimdFetchError) throw cimdPageError(error);
    throw error;
  }
}

function cimdPageError(error: CimdFetchError): PageError {
  return new PageError('unverified_client', `cimd: ${error.reason}: ${error.detail}`, { cause: error });
}

async function readDecision(request: Request, origin: string): Promise<{ handle: string; decision: 'approve' | 'deny' }> {
  // Defence in depth beside the handle's browser binding: a browser always sends Origin on a
  // form POST, and a cross-site one has no business deciding here. `Origin: null` (a sandboxed
  // or privacy-stripped context) is refused like any other foreign origin. A POST with no Origin
  // at all is let through to the handle check: only a non-browser client omits it, and the
  // handle is bound to the browser that opened the page by a SameSite `__Host-` cookie, which such
  // a client does not hold unless it is the person's own tool (test/guarantees-consent.test.ts).
  if (isCrossSitePost(request, origin)) {
    throw new PageError('cross_site', `consent posted from ${request.headers.get('Origin')}`);
  }
  const form = await request.formData().catch(() => undefined);
  const handle = form?.get('handle');
  const decision = form?.get('decision');
  if (typeof handle !== 'string' || handle === '' || (decision !== 'approve' && decision !== 'deny')) {
    throw new PageError('stale_link', 'consent post without handle or decision');
  }
  return { handle, decision };
}
