/**
 * Where people's own tokens live: one KV entry per person and upstream, `user-token:<upstream>:<email>`,
 * holding only the sealed token (crypto.ts), with when it was saved as KV metadata. Decrypted
 * tokens are kept in the isolate for at most CACHE_TTL_MS, so a busy connector costs no KV read
 * per request; a save or delete in this isolate takes effect here at once, and in other isolates
 * within that time (and KV's own propagation, up to about 60 s).
 */
import { openToken, sealToken } from './crypto';

export const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 1_000;
const PREFIX = 'user-token:';

export interface StoredToken {
  token: string;
  /** Unix seconds. */
  savedAt: number;
}

export interface TokenStatus {
  email: string;
  upstream: string;
  savedAt: number;
}

interface Metadata {
  savedAt: number;
}

type Cache = Map<string, { stored: StoredToken | undefined; until: number }>;
/**
 * Per configuration's keys (one per deployment), so nothing decrypted under one set of keys is
 * served under another. Also remembers that none is stored, so people on a shared fallback token
 * cost no read either.
 */
const caches = new WeakMap<readonly string[], Cache>();

function entryKey(upstream: string, email: string): string {
  return `${PREFIX}${upstream}:${email}`;
}

export class TokenVault {
  private readonly cache: Cache;

  constructor(
    private readonly kv: KVNamespace,
    /** The current key first; older ones only decrypt. */
    private readonly secrets: readonly string[],
  ) {
    let cache = caches.get(secrets);
    if (!cache) caches.set(secrets, (cache = new Map()));
    this.cache = cache;
  }

  /** The person's own token for this upstream, or undefined when none is stored (or it no longer opens). */
  async read(email: string, upstream: string): Promise<StoredToken | undefined> {
    const key = entryKey(upstream, email);
    const cached = this.cache.get(key);
    if (cached && cached.until > Date.now()) return cached.stored;

    const { value, metadata } = await this.kv.getWithMetadata<Metadata>(key);
    if (value === null) {
      this.remember(key, undefined);
      return undefined;
    }
    const opened = await openToken(this.secrets, { email, upstream }, value);
    if (!opened) return undefined;
    const stored = { token: opened.token, savedAt: metadata?.savedAt ?? 0 };
    // Rotation: an entry still under TOKEN_ENCRYPTION_KEY_PREVIOUS moves to the current key on use.
    if (opened.keyIndex > 0) await this.write(key, email, upstream, stored);
    this.remember(key, stored);
    return stored;
  }

  async save(email: string, upstream: string, token: string): Promise<StoredToken> {
    const stored = { token, savedAt: Math.floor(Date.now() / 1000) };
    const key = entryKey(upstream, email);
    await this.write(key, email, upstream, stored);
    this.remember(key, stored);
    return stored;
  }

  async remove(email: string, upstream: string): Promise<void> {
    const key = entryKey(upstream, email);
    this.cache.delete(key);
    await this.kv.delete(key);
  }

  /** Who has a token stored for which upstream, and since when; never a token. For admins. */
  async list(): Promise<TokenStatus[]> {
    const statuses: TokenStatus[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.kv.list<Metadata>({ prefix: PREFIX, ...(cursor ? { cursor } : {}) });
      for (const { name, metadata } of page.keys) {
        const rest = name.slice(PREFIX.length);
        const colon = rest.indexOf(':');
        statuses.push({ upstream: rest.slice(0, colon), email: rest.slice(colon + 1), savedAt: metadata?.savedAt ?? 0 });
      }
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
    return statuses;
  }

  private async write(key: string, email: string, upstream: string, stored: StoredToken): Promise<void> {
    const [secret] = this.secrets;
    if (!secret) throw new Error('no TOKEN_ENCRYPTION_KEY');
    const sealed = await sealToken(secret, { email, upstream }, stored.token);
    await this.kv.put(key, sealed, { metadata: { savedAt: stored.savedAt } satisfies Metadata });
  }

  private remember(key: string, stored: StoredToken | undefined): void {
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { stored, until: Date.now() + CACHE_TTL_MS });
  }
}
