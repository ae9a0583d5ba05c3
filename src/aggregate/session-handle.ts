/**
 * The `Mcp-Session-Id` a 2025-era client holds for an aggregate session: `<id>.<HMAC>`, keyed by
 * HKDF from COOKIE_ENCRYPTION_KEY with a purpose of its own, over the person's email, the client
 * ID, the aggregate and the random id. Checked before anything else, so someone else's handle, an
 * altered one, or one from before a key rotation is an unknown session (404) without any storage
 * being asked. The id names the session's Durable Object (sessions.ts).
 */
import { hmacKey, sign, verify } from '../lib';

const HKDF_INFO = 'mcp-oauth-gateway aggregate-session v1';
const ID = /^[0-9a-f-]{36}$/;

export interface SessionOwner {
  secret: string;
  aggregate: string;
  email: string;
  clientId: string;
}

/** A new session's id and the handle its client gets. */
export async function newSession(owner: SessionOwner): Promise<{ id: string; handle: string }> {
  const id = crypto.randomUUID();
  return { id, handle: `${id}.${await sign(await keyFor(owner), signedText(id, owner))}` };
}

/** The session id in `handle`, or undefined when it is not this person's and client's for this aggregate. */
export async function sessionIdOf(handle: string, owner: SessionOwner): Promise<string | undefined> {
  const [id = '', mac = '', ...extra] = handle.split('.');
  if (extra.length > 0 || !ID.test(id) || mac.length > 64) return undefined;
  return (await verify(await keyFor(owner), signedText(id, owner), mac)) ? id : undefined;
}

function keyFor(owner: SessionOwner): Promise<CryptoKey> {
  return hmacKey(owner.secret, HKDF_INFO);
}

/** JSON keeps the parts apart whatever characters they hold. */
function signedText(id: string, owner: SessionOwner): string {
  return JSON.stringify([owner.email.toLowerCase(), owner.clientId, owner.aggregate, id]);
}
