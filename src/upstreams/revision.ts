/**
 * Which MCP revision the gateway's own requests speak, and what each asks of a request. 2025-era
 * revisions open with `initialize` (and may hold a session); 2026-07-28 is stateless: each request
 * carries the version, the client's capabilities and identity in `_meta`, mirrored in headers.
 * What `server/discover` taught of an upstream is kept in the isolate for a few minutes.
 *
 * Plain TypeScript with no Workers-only import: the doctor loads it in Node.
 */

/** The stateless revision: the `_meta` envelope and the `Mcp-Method` / `Mcp-Name` headers. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';
/** What the gateway offers in `initialize`; the server answers with the one it speaks. */
export const LEGACY_PROTOCOL_VERSION = '2025-11-25';
/** This package's version (package.json; a test keeps them equal). */
export const GATEWAY_VERSION = '0.1.0';
/** How the gateway introduces itself upstream, in `initialize` and in every 2026-07-28 envelope. */
export const CLIENT_INFO = Object.freeze({ name: 'mcp-oauth-gateway', version: GATEWAY_VERSION });

const REMEMBER_MS = 5 * 60_000;
const MAX_REMEMBERED = 1_000;
/** Upstream URL -> the revision family `server/discover` found, and until when to trust it. */
const learned = new Map<string, { modern: boolean; until: number }>();

/** Revisions are dates: every one from 2026-07-28 on is stateless. */
export function isModernRevision(version: string | null | undefined): version is string {
  return typeof version === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= MODERN_PROTOCOL_VERSION;
}

/** The per-request `_meta` of a 2026-07-28 request: the gateway asks for no client capability. */
export function requestEnvelope(version: string): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': version,
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': { ...CLIENT_INFO },
  };
}

/** The body field `Mcp-Name` mirrors, per method (2026-07-28 Streamable HTTP, standard headers). */
const NAME_FIELDS: Readonly<Record<string, string>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/** The `Mcp-Name` header value for a request, if its method has one: `=?base64?…?=` unless plain ASCII. */
export function mcpNameHeader(method: string, params: Record<string, unknown> | undefined): string | undefined {
  const field = Object.hasOwn(NAME_FIELDS, method) ? NAME_FIELDS[method] : undefined;
  const value = field === undefined ? undefined : params?.[field];
  if (typeof value !== 'string') return undefined;
  const plain = value.length > 0 && value === value.trim() && /^[\x20-\x7e\t]*$/.test(value) && !/^=\?base64\?.*\?=$/.test(value);
  if (plain) return value;
  let binary = '';
  for (const byte of new TextEncoder().encode(value)) binary += String.fromCharCode(byte);
  return `=?base64?${btoa(binary)}?=`;
}

/**
 * What an answer to `server/discover` says of the server, read as the v2 SDK's client does: a
 * result listing 2026-07-28 among `supportedVersions` is a stateless server; 401/403 is about the
 * credential; 5xx says nothing; any other answer (an error, "method not found", "no session", a
 * result without the list) is a 2025-era server, to be opened with `initialize`.
 */
export function discoverVerdict(status: number, answer: Record<string, unknown> | undefined): 'modern' | 'legacy' | 'refused' | 'unavailable' {
  if (status === 401 || status === 403) return 'refused';
  if (status >= 500) return 'unavailable';
  const result = answer?.result;
  const versions = typeof result === 'object' && result !== null ? (result as { supportedVersions?: unknown }).supportedVersions : undefined;
  return Array.isArray(versions) && versions.includes(MODERN_PROTOCOL_VERSION) ? 'modern' : 'legacy';
}

/** The revision family learned for this upstream URL a short while ago, if any. */
export function knownRevision(url: URL, now = Date.now()): 'modern' | 'legacy' | undefined {
  const entry = learned.get(url.href);
  if (!entry) return undefined;
  if (entry.until <= now) {
    learned.delete(url.href);
    return undefined;
  }
  return entry.modern ? 'modern' : 'legacy';
}

export function rememberRevision(url: URL, verdict: 'modern' | 'legacy', now = Date.now()): void {
  learned.delete(url.href);
  // Oldest first: a Map keeps insertion order.
  while (learned.size >= MAX_REMEMBERED) learned.delete(learned.keys().next().value as string);
  learned.set(url.href, { modern: verdict === 'modern', until: now + REMEMBER_MS });
}

export function forgetRevision(url: URL): void {
  learned.delete(url.href);
}
