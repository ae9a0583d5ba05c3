/**
 * The proxy's steps after the forward: upstream failures mapped to the gateway's errors, then the
 * upstream's answer rewritten for the client (headers, session handle, redirect, scrubbed error
 * body, legacy endpoint events, the tool policy's filter).
 */

import { rewriteEndpointEvents } from '../lib';
import type { UpstreamCredential } from '../upstreams';
import type { Exchange } from './exchange';
import { clientResponseHeaders } from './headers';
import type { JsonRpcId } from './jsonrpc-error';
import { gatewayEndpointFor } from './legacy-sse';
import { gatewayPathFor } from './route';
import { scrubbedErrorBody } from './scrub';
import { bindSessionId } from './session-binding';
import type { ForwardedUnderPolicy } from './tool-policy';

// Fetch forbids a body on these statuses.
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export interface Forwarded {
  /** The upstream URL the request went to. */
  target: URL;
  credential: UpstreamCredential;
  gate: ForwardedUnderPolicy | undefined;
  id: JsonRpcId;
}

/** The client's response from the upstream's, or the gateway's error when the upstream's must not pass. */
export async function clientResponse(x: Exchange, upstream: Response, forwarded: Forwarded): Promise<Response> {
  const { target, credential, gate, id } = forwarded;
  const settings = x.caller.upstream;

  // The upstream refusing *our* credential is the gateway's fault, not the client's: a 401 with
  // WWW-Authenticate would send the client back through OAuth, which cannot fix it, in a loop.
  if (upstream.status === 401 || upstream.status === 403) {
    discard(upstream);
    return x.fail(credential.kind === 'own' ? 'upstreamRefusedOwnToken' : 'upstreamRefusedCredential', 'upstream_refused_credential', id);
  }

  const headers = clientResponseHeaders(upstream.headers, x.origin);
  await bindSessionId(headers, x.caller);
  const location = upstream.headers.get('Location');
  if (location !== null && upstream.status >= 300 && upstream.status < 400) {
    // Passed only when it leads back into the proxied path (e.g. a trailing-slash redirect), as
    // the gateway URL for it: the client never sees the upstream's host, and a redirect elsewhere
    // is refused rather than followed with the credential.
    const to = URL.canParse(location, target.href) ? new URL(location, target) : undefined;
    const path = to && gatewayPathFor(to, settings.path, settings.url);
    if (!path) {
      discard(upstream);
      return x.fail('upstreamBadResponse', 'upstream_redirect_refused', id);
    }
    headers.set('Location', path);
  }

  let responseBody = NULL_BODY_STATUSES.has(upstream.status) ? null : upstream.body;
  if (!upstream.ok) responseBody = await scrubbedErrorBody(responseBody, settings, credential);
  // Only a GET stream can be a legacy HTTP+SSE stream; POST answers pass untouched.
  const endpoint =
    responseBody && x.request.method === 'GET' && upstream.ok && isEventStream(headers) ? (data: string) => announcedEndpoint(x, target, data) : undefined;
  // A stream is parsed once: under a tool policy the policy's event-by-event pass rewrites the
  // endpoint events too; without one, the byte scanner does, and hands the rest to a native pipe.
  if (endpoint && responseBody && !gate) responseBody = rewriteEndpointEvents(responseBody, endpoint);
  const response = new Response(responseBody, { status: upstream.status, statusText: upstream.statusText, headers });
  return gate ? x.finish(await gate.respond(response, endpoint), gate.outcome) : x.finish(response, 'ok');
}

/** The gateway URL to announce for an upstream's legacy `endpoint` event; undefined (logged) refuses it. */
async function announcedEndpoint(x: Exchange, target: URL, data: string): Promise<string | undefined> {
  const { upstream, config, identity, clientId } = x.caller;
  const endpoint = await gatewayEndpointFor(data, target, upstream, config, identity.email);
  if (endpoint === undefined) {
    console.warn(JSON.stringify({ event: 'mcp_proxy_endpoint_refused', upstream: upstream.name, email: identity.email, clientId, path: x.url.pathname }));
  }
  return endpoint;
}

function isEventStream(headers: Headers): boolean {
  return /^text\/event-stream\s*(;|$)/i.test(headers.get('Content-Type') ?? '');
}

/** Releases an upstream body the client will not get. */
function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}
