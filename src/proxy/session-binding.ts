/**
 * Streamable HTTP sessions bound to the person (issue #16). Behind one shared upstream credential
 * the upstream cannot tell people apart, so its `Mcp-Session-Id` is all that keeps one person's
 * session from another's: anyone allowed who learned it could read or write that session.
 *
 * The client therefore never holds the upstream's id as such, but a handle
 * `<base64url(upstream id)>.<base64url(HMAC-SHA-256)>`, keyed by HKDF from COOKIE_ENCRYPTION_KEY
 * with a purpose of its own, over the person's email, the upstream's name and the upstream's id.
 * A request's handle is checked and swapped back for the upstream's id; one that does not check
 * out for this person and upstream (someone else's, forged, a raw upstream id, or one made before
 * COOKIE_ENCRYPTION_KEY was rotated) is answered as an unknown session, so the client starts a new
 * one. The same id always gives the same handle, so nothing is stored.
 */
import type { Config, UpstreamConfig } from '../config';
import type { Identity } from '../identity';
import { base64url, fromBase64url, hmacKey, sign, verify } from '../lib';

/** Who a session belongs to: the proxy's caller has all of it. */
export interface SessionOwner {
  config: Pick<Config, 'cookieSecret'>;
  upstream: Pick<UpstreamConfig, 'name'>;
  identity: Pick<Identity, 'email'>;
}

const HEADER = 'Mcp-Session-Id';
const HKDF_INFO = 'mcp-oauth-gateway session-id v1';
/** A handle longer than this was not made here; the bound spares the HMAC on junk. */
const MAX_HANDLE_LENGTH = 4096;
/** Handles made or checked per isolate and key; a session sends the same one on every request. */
const MAX_REMEMBERED = 2000;
const remembered = new WeakMap<SessionOwner['config'], Map<string, string>>();

/**
 * Puts the upstream's own session id, from the client's handle, on the upstream request; false
 * (and nothing set) when the client sent a handle that is not this person's for this upstream.
 */
export async function forwardSessionId(client: Headers, upstream: Headers, owner: SessionOwner): Promise<boolean> {
  const session = await clientSession(client, owner);
  if (!session) return false;
  putSession(upstream, session);
  return true;
}

/**
 * The session a request's handle names: `{ id }` (undefined: no handle sent), or undefined when
 * the handle is not this person's for this upstream. Needs only the request headers and the
 * caller, so the proxy checks it before anything is counted or looked up.
 */
export async function clientSession(client: Headers, owner: SessionOwner): Promise<{ id: string | undefined } | undefined> {
  const handle = client.get(HEADER);
  if (handle === null) return { id: undefined };
  const id = await upstreamSessionId(handle, owner);
  return id === undefined ? undefined : { id };
}

/** Puts the upstream's own session id (from `clientSession`) on the upstream request. */
export function putSession(upstream: Headers, session: { id: string | undefined }): void {
  if (session.id !== undefined) upstream.set(HEADER, session.id);
}

/** Replaces the upstream's session id in the client's response headers with this person's handle. */
export async function bindSessionId(client: Headers, owner: SessionOwner): Promise<void> {
  const id = client.get(HEADER);
  if (id === null) return;
  // An empty id names no session: there is nothing to bind, nor to send back.
  if (id === '') client.delete(HEADER);
  else client.set(HEADER, await sessionHandle(id, owner));
}

/** The handle this person sees for the upstream's session `id` (visible ASCII: base64url and a dot). */
export async function sessionHandle(id: string, owner: SessionOwner): Promise<string> {
  const text = signedText(id, owner);
  const known = memo(owner).get(`id ${text}`);
  if (known !== undefined) return known;
  const handle = `${base64url(new TextEncoder().encode(id))}.${await sign(await keyFor(owner), text)}`;
  remember(owner, text, handle, id);
  return handle;
}

/** The upstream's session id in `handle`, or undefined when the handle is not this person's for this upstream. */
export async function upstreamSessionId(handle: string, owner: SessionOwner): Promise<string | undefined> {
  const known = memo(owner).get(`handle ${signedText(handle, owner)}`);
  if (known !== undefined) return known;
  if (handle.length > MAX_HANDLE_LENGTH) return undefined;
  const [encoded = '', mac = '', ...extra] = handle.split('.');
  const bytes = fromBase64url(encoded);
  if (!bytes || extra.length > 0) return undefined;
  const id = new TextDecoder().decode(bytes);
  const text = signedText(id, owner);
  if (!(await verify(await keyFor(owner), text, mac))) return undefined;
  remember(owner, text, handle, id);
  return id;
}

/**
 * This key's handles that were made or checked in this isolate, both ways, for this person and
 * upstream only (a handle is remembered under its owner's email and upstream): the HMAC is then
 * computed once per session and isolate, not twice per request. Only a handle that verified, or
 * that was made here, is ever remembered.
 */
function memo(owner: SessionOwner): Map<string, string> {
  let map = remembered.get(owner.config);
  if (!map) {
    map = new Map();
    remembered.set(owner.config, map);
  }
  return map;
}

function remember(owner: SessionOwner, text: string, handle: string, id: string): void {
  const map = memo(owner);
  // The oldest go first; a session still in use is simply checked again.
  while (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value as string);
  map.set(`id ${text}`, handle);
  map.set(`handle ${signedText(handle, owner)}`, id);
}

function keyFor(owner: SessionOwner): Promise<CryptoKey> {
  return hmacKey(owner.config.cookieSecret, HKDF_INFO);
}

/** JSON keeps the parts apart whatever characters they hold; emails compare without case, as the allowlist does. */
function signedText(id: string, owner: SessionOwner): string {
  return JSON.stringify([owner.identity.email.toLowerCase(), owner.upstream.name, id]);
}
