/**
 * The HTTP+SSE transport (MCP 2024-11-05): the client GETs an event stream whose `endpoint` event
 * names the URL to POST messages to. Through the gateway that URL must lead back to the gateway.
 *
 * Design: only an endpoint on the upstream's own origin is accepted. If it lies under UPSTREAM_URL's
 * path it becomes the ordinary `<gateway path>/<rest>` URL. Often it lies outside (`/sse` announcing
 * `/message?sessionId=…`); mapping arbitrary upstream paths would let any token holder reach any
 * upstream path with the gateway's credential, so instead the path is signed:
 * `<gateway path>/.endpoint/<base64url(path)>.<base64url(HMAC)>`, the HMAC keyed from COOKIE_ENCRYPTION_KEY
 * (via HKDF, so the cookie key and this one stay independent) over the upstream origin and path.
 * Only paths the upstream itself announced are then reachable; the query (the session id) is the
 * client's, as for any other request. An endpoint on another origin ends the stream: the client
 * must never learn or be sent to another host.
 */
import type { Config, UpstreamConfig } from '../config';
import { base64url, fromBase64url } from '../lib/base64url';
import { gatewayPathFor, SIGNED_ENDPOINT_SEGMENT } from './route';

const encoder = new TextEncoder();
const keys = new WeakMap<Config, Promise<CryptoKey>>();

/** The gateway URL (path and query) to announce for an upstream's `endpoint` event data, or undefined to refuse it. */
export async function gatewayEndpointFor(data: string, upstreamStream: URL, upstream: UpstreamConfig, config: Config): Promise<string | undefined> {
  const base = upstream.url;
  const announced = URL.canParse(data, upstreamStream.href) ? new URL(data, upstreamStream) : undefined;
  if (!announced || announced.origin !== base.origin) return undefined;
  const mapped = gatewayPathFor(announced, upstream.path, base);
  if (mapped) return mapped;
  const signature = await crypto.subtle.sign('HMAC', await endpointKey(config), signedMessage(upstream, announced.pathname));
  return `${upstream.path}/${SIGNED_ENDPOINT_SEGMENT}/${base64url(encoder.encode(announced.pathname))}.${base64url(signature)}${announced.search}`;
}

/** The upstream URL a signed endpoint token leads to, or undefined if the token is not one the gateway made for this upstream. */
export async function upstreamUrlForSignedEndpoint(token: string, search: string, upstream: UpstreamConfig, config: Config): Promise<URL | undefined> {
  const base = upstream.url;
  const [encodedPath, encodedSignature, ...extra] = token.split('.');
  if (!encodedPath || !encodedSignature || extra.length > 0) return undefined;
  const path = fromBase64url(encodedPath);
  const signature = fromBase64url(encodedSignature);
  if (!path || !signature) return undefined;
  const pathname = new TextDecoder().decode(path);
  // crypto.subtle.verify compares in constant time.
  if (!(await crypto.subtle.verify('HMAC', await endpointKey(config), signature, signedMessage(upstream, pathname)))) return undefined;
  const target = new URL(`${base.origin}${pathname}${search}`);
  return target.origin === base.origin && target.pathname === pathname ? target : undefined;
}

/** Thrown inside the stream to end it: the upstream announced an endpoint that cannot be rewritten. */
export class EndpointRefusedError extends Error {
  override readonly name = 'EndpointRefusedError';
}

/**
 * An endpoint event is a short URI; an event this long is passed through rather than held, and if
 * it then turns out to be an endpoint event the stream ends instead of leaking it.
 */
const MAX_HELD_EVENT_CHARS = 64 * 1024;

/**
 * Pipes an SSE body through, replacing the data of every `endpoint` event with `rewrite(data)`.
 * Each event is held only until its terminating blank line, which is when a client would
 * dispatch it anyway, so no event is delayed; memory is bounded by the size of one short event.
 */
export function rewriteEndpointEvents(
  body: ReadableStream<Uint8Array>,
  rewrite: (data: string) => Promise<string | undefined>,
): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  let pending = ''; // text after the last complete line
  let held: Array<{ raw: string; isData: boolean }> = [];
  let heldChars = 0;
  let data: string[] = [];
  let isEndpoint = false;
  let passthrough = false; // the current event outgrew the cap and streams as it comes
  let midLine = false; // part of an overlong line was already passed on

  const reset = () => {
    held = [];
    heldChars = 0;
    data = [];
    isEndpoint = false;
    passthrough = false;
  };

  // SSE lines end with CRLF, LF or CR (WHATWG HTML §9.2.5).
  async function line(text: string, raw: string): Promise<string> {
    if (text === '') {
      let out: string;
      if (passthrough) out = raw;
      else if (isEndpoint) {
        const rewritten = await rewrite(data.join('\n').trim());
        if (rewritten === undefined) throw new EndpointRefusedError('upstream announced an endpoint outside its origin');
        // The event's other fields (event, id, retry) stay; its data lines become one, ended like the event.
        out = `${held.filter((l) => !l.isData).map((l) => l.raw).join('')}data: ${rewritten}${raw}${raw}`;
      } else out = held.map((l) => l.raw).join('') + raw;
      reset();
      return out;
    }
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') isEndpoint = value === 'endpoint';
    if (passthrough) {
      if (isEndpoint) throw new EndpointRefusedError('oversized endpoint event');
      return raw;
    }
    if (field === 'data') data.push(value);
    held.push({ raw, isData: field === 'data' });
    heldChars += raw.length;
    if (heldChars <= MAX_HELD_EVENT_CHARS) return '';
    if (isEndpoint) throw new EndpointRefusedError('oversized endpoint event');
    const out = held.map((l) => l.raw).join('');
    held = [];
    data = [];
    passthrough = true;
    return out;
  }

  async function drain(final: boolean): Promise<string> {
    let out = '';
    let start = 0;
    const terminator = /\r\n|\r|\n/g;
    for (;;) {
      terminator.lastIndex = start;
      const match = terminator.exec(pending);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === pending.length - 1 && !final) break;
      const end = match.index + match[0].length;
      const raw = pending.slice(start, end);
      if (midLine) {
        // The rest of an overlong line: its start was parsed (or passed) already.
        out += raw;
        midLine = false;
      } else out += await line(pending.slice(start, match.index), raw);
      start = end;
    }
    pending = pending.slice(start);
    if (final) {
      // An unterminated last event is never dispatched by a client; pass it on unless it is an endpoint.
      if (!isEndpoint) out += held.map((l) => l.raw).join('') + pending;
      pending = '';
    } else if (pending.length > MAX_HELD_EVENT_CHARS) {
      // One line longer than any endpoint event: stream it (and its event) instead of holding it.
      if (isEndpoint) throw new EndpointRefusedError('oversized endpoint event');
      out += held.map((l) => l.raw).join('') + pending;
      held = [];
      data = [];
      pending = '';
      passthrough = true;
      midLine = true;
    }
    return out;
  }

  const encoder = new TextEncoder();
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        pending += decoder.decode(chunk, { stream: true });
        const out = await drain(false);
        if (out) controller.enqueue(encoder.encode(out));
      },
      async flush(controller) {
        pending += decoder.decode();
        const out = await drain(true);
        if (out) controller.enqueue(encoder.encode(out));
      },
    }),
  );
}

/**
 * What the HMAC covers: the upstream's origin and the announced path, and for a named upstream its
 * gateway path too, so an endpoint signed for one upstream opens nothing on another (even one on
 * the same origin). The single `/mcp` upstream keeps the original form, so legacy sessions open
 * across an upgrade keep working.
 */
function signedMessage(upstream: UpstreamConfig, pathname: string): Uint8Array {
  const message = `${upstream.url.origin}\n${pathname}`;
  return encoder.encode(upstream.path === '/mcp' ? message : `${upstream.path}\n${message}`);
}

function endpointKey(config: Config): Promise<CryptoKey> {
  let key = keys.get(config);
  if (!key) {
    key = crypto.subtle
      .importKey('raw', encoder.encode(config.cookieSecret), 'HKDF', false, ['deriveKey'])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode('mcp-oauth-gateway legacy-sse endpoint v1') },
          material,
          { name: 'HMAC', hash: 'SHA-256', length: 256 },
          false,
          ['sign', 'verify'],
        ),
      );
    keys.set(config, key);
  }
  return key;
}
