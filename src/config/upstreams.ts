/**
 * The upstream MCP servers: the single-upstream variables (`UPSTREAM_URL`, ..., served at `/mcp`)
 * and `UPSTREAMS` (each served at `/<name>/mcp`). Both may be set together.
 */

import type { PeopleList } from './people';
import { type RateLimitConfig, readRateLimit, readToolPolicy, type ToolPolicy } from './policy';
import { type ConfigProblem, Reader } from './reader';

export interface UpstreamConfig {
  /** The `UPSTREAMS` key; `mcp` for the single-upstream variables (a name UPSTREAMS cannot use). */
  name: string;
  /** Shown to people; undefined for the single upstream, which pages call "this MCP server". */
  title: string | undefined;
  /** Where the gateway serves it: `/mcp`, or `/<name>/mcp`. Also its resource's path (RFC 8707). */
  path: string;
  url: URL;
  /** The shared credential; undefined when every allowed user has their own in `userTokens`. */
  token: string | undefined;
  /** Lowercased email -> that user's own upstream credential. */
  userTokens: ReadonlyMap<string, string>;
  authHeader: string;
  /** Prefix before the credential, without the space; empty for a bare key. */
  authScheme: string;
  headers: ReadonlyArray<readonly [string, string]>;
  timeoutMs: number;
  /** Narrows ALLOWED_EMAILS for this upstream only; undefined: no narrowing. */
  allowedEmails: PeopleList | undefined;
  /** People bring their own token (asked for at login, kept in the vault); `token`/`userTokens` are the fallback. */
  userSupplied: boolean;
  /** Where a person makes a token for this upstream, linked from the token page. */
  tokenHelp: URL | undefined;
  /** Which tools, resources and prompts people may use (`tools`, `resources`, `prompts`, `toolsFor`); undefined: all. */
  tools: ToolPolicy | undefined;
  /** Requests per person per period (`rateLimit`); undefined: no limit. */
  rateLimit: RateLimitConfig | undefined;
  /** What the audit trail keeps of a `tools/call`'s arguments (`audit.arguments`): none by default. */
  audit: UpstreamAuditConfig;
}

/** `none`: nothing; `keys`: the argument names; `full`: the arguments' JSON, capped (docs/audit.md). */
export type AuditArguments = 'none' | 'keys' | 'full';

export interface UpstreamAuditConfig {
  arguments: AuditArguments;
}

export const SINGLE_UPSTREAM_NAME = 'mcp';
export const DEFAULT_UPSTREAM_TIMEOUT = 30;

/** Paths the gateway answers itself, which an upstream (or aggregate) name would shadow. */
export const RESERVED_NAMES = new Set(['mcp', 'authorize', 'callback', 'token', 'register', 'health', 'connections']);
/**
 * Upstream and aggregate names. No `_`: an aggregate names each tool `<upstream>_<tool>`, and the
 * first `_` is where it splits the name again, so an upstream name must never hold one.
 */
export const NAME = /^[a-z0-9-]{1,32}$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The gateway's own secrets: an upstream setting naming one would send it upstream. */
const GATEWAY_SECRETS = new Set(['ACCESS_CLIENT_SECRET', 'COOKIE_ENCRYPTION_KEY', 'TOKEN_ENCRYPTION_KEY', 'TOKEN_ENCRYPTION_KEY_PREVIOUS']);
const SETTINGS = [
  'url',
  'title',
  'token',
  'userTokens',
  'userSupplied',
  'tokenHelp',
  'authHeader',
  'authScheme',
  'headers',
  'timeout',
  'allowedEmails',
  'tools',
  'resources',
  'prompts',
  'toolsFor',
  'rateLimit',
  'audit',
] as const;
const SINGLE_UPSTREAM_VARIABLES = [
  'UPSTREAM_TOKEN',
  'USER_TOKENS',
  'UPSTREAM_USER_SUPPLIED',
  'UPSTREAM_TOKEN_HELP',
  'UPSTREAM_AUTH_HEADER',
  'UPSTREAM_AUTH_SCHEME',
  'UPSTREAM_HEADERS',
  'UPSTREAM_TIMEOUT',
  'UPSTREAM_TOOLS',
  'UPSTREAM_RESOURCES',
  'UPSTREAM_PROMPTS',
  'UPSTREAM_TOOLS_FOR',
  'UPSTREAM_RATE_LIMIT',
  'UPSTREAM_AUDIT',
];
const UPSTREAM_URL_HINT = "the upstream MCP server's endpoint, e.g. https://mcp.example.com/mcp";

/** Every configured upstream, the single one first; problems are added to `problems`. */
export function readUpstreams(env: Readonly<Record<string, unknown>>, problems: ConfigProblem[], allowlist: PeopleList | undefined): UpstreamConfig[] {
  const reader = new Reader(env, problems);
  const several = reader.jsonObject(
    'UPSTREAMS',
    'a JSON object of upstream name to its settings, e.g. {"github":{"url":"https://api.githubcopilot.com/mcp/","token":"GITHUB_TOKEN"}}',
  );
  const hasSeveral = reader.has('UPSTREAMS');
  const upstreams: UpstreamConfig[] = [];

  if (reader.has('UPSTREAM_URL') || !hasSeveral) {
    const single = readSingleUpstream(reader, allowlist, hasSeveral, env);
    if (single) upstreams.push(single);
  } else {
    for (const variable of SINGLE_UPSTREAM_VARIABLES.filter((name) => reader.has(name))) {
      reader.problem(variable, 'is set but UPSTREAM_URL is not: set UPSTREAM_URL to serve that upstream at /mcp, or unset this');
    }
  }
  if (several && Object.keys(several).length === 0 && !reader.has('UPSTREAM_URL')) {
    reader.problem('UPSTREAMS', 'lists no upstream: add one, e.g. {"github":{"url":"https://api.githubcopilot.com/mcp/","token":"GITHUB_TOKEN"}}');
  }
  for (const [name, settings] of Object.entries(several ?? {})) {
    const upstream = readNamedUpstream(name, settings, env, problems, allowlist);
    if (upstream) upstreams.push(upstream);
  }
  return upstreams;
}

function readSingleUpstream(
  reader: Reader,
  allowlist: PeopleList | undefined,
  hasSeveral: boolean,
  env: Readonly<Record<string, unknown>>,
): UpstreamConfig | undefined {
  const url = reader.url('UPSTREAM_URL', hasSeveral ? UPSTREAM_URL_HINT : `${UPSTREAM_URL_HINT}, or configure several in UPSTREAMS`);
  const token = reader.string('UPSTREAM_TOKEN', '', { optional: true });
  const userTokens = reader.userTokens('USER_TOKENS');
  const userSupplied = reader.boolean('UPSTREAM_USER_SUPPLIED');
  if (token === undefined && !userSupplied) requireOwnTokens(reader, 'UPSTREAM_TOKEN', 'USER_TOKENS', allowlist, userTokens);
  const upstream = {
    name: SINGLE_UPSTREAM_NAME,
    title: undefined,
    path: `/${SINGLE_UPSTREAM_NAME}`,
    token,
    userTokens,
    allowedEmails: undefined,
    userSupplied,
    ...readForwarding(reader, SINGLE_KEYS, env),
  };
  return url ? { ...upstream, url } : undefined;
}

function readNamedUpstream(
  name: string,
  settings: unknown,
  env: Readonly<Record<string, unknown>>,
  problems: ConfigProblem[],
  globalAllowlist: PeopleList | undefined,
): UpstreamConfig | undefined {
  const label = `UPSTREAMS.${name}`;
  const before = problems.length;
  if (!NAME.test(name) || RESERVED_NAMES.has(name)) {
    problems.push({
      variable: label,
      message: `is not a usable name: use 1 to 32 of a-z, 0-9 and -, other than ${[...RESERVED_NAMES].join(', ')}`,
    });
  }
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    problems.push({ variable: label, message: 'must be an object of settings, e.g. {"url":"https://…","token":"GITHUB_TOKEN"}' });
    return undefined;
  }
  const reader = new Reader(settings as Record<string, unknown>, problems, `${label}.`);
  for (const key of Object.keys(settings).filter((key) => !(SETTINGS as readonly string[]).includes(key))) {
    reader.problem(key, `is not a setting: use ${SETTINGS.join(', ')}`);
  }

  const url = reader.url('url', UPSTREAM_URL_HINT);
  const title = reader.title('title');
  const allowedEmails = reader.allowlist('allowedEmails');
  const token = referencedSecret(reader, 'token', env);
  const userTokensVariable = reference(reader, 'userTokens', env);
  const userTokens = userTokensVariable
    ? new Reader({ [`${label}.userTokens`]: env[userTokensVariable] }, problems).userTokens(`${label}.userTokens`)
    : new Map<string, string>();
  const userSupplied = reader.boolean('userSupplied');
  if (token === undefined && !reader.has('token') && !userSupplied) {
    requireOwnTokens(reader, 'token', 'userTokens', allowedEmails ?? globalAllowlist, userTokens);
  }

  const upstream = {
    name,
    title,
    path: `/${name}/mcp`,
    token,
    userTokens,
    allowedEmails,
    userSupplied,
    ...readForwarding(reader, NAMED_KEYS, env),
  };
  return url && problems.length === before ? { ...upstream, url } : undefined;
}

/** The settings both forms share, under each form's own names. */
type ForwardingKeys = Record<
  'authHeader' | 'authScheme' | 'headers' | 'timeout' | 'tokenHelp' | 'tools' | 'resources' | 'prompts' | 'toolsFor' | 'rateLimit' | 'audit',
  string
>;
const SINGLE_KEYS: ForwardingKeys = {
  authHeader: 'UPSTREAM_AUTH_HEADER',
  authScheme: 'UPSTREAM_AUTH_SCHEME',
  headers: 'UPSTREAM_HEADERS',
  timeout: 'UPSTREAM_TIMEOUT',
  tokenHelp: 'UPSTREAM_TOKEN_HELP',
  tools: 'UPSTREAM_TOOLS',
  resources: 'UPSTREAM_RESOURCES',
  prompts: 'UPSTREAM_PROMPTS',
  toolsFor: 'UPSTREAM_TOOLS_FOR',
  rateLimit: 'UPSTREAM_RATE_LIMIT',
  audit: 'UPSTREAM_AUDIT',
};
const NAMED_KEYS: ForwardingKeys = {
  authHeader: 'authHeader',
  authScheme: 'authScheme',
  headers: 'headers',
  timeout: 'timeout',
  tokenHelp: 'tokenHelp',
  tools: 'tools',
  resources: 'resources',
  prompts: 'prompts',
  toolsFor: 'toolsFor',
  rateLimit: 'rateLimit',
  audit: 'audit',
};

/** How requests go to an upstream and what the gateway lets through: the same for both forms. */
function readForwarding(reader: Reader, keys: ForwardingKeys, env: Readonly<Record<string, unknown>>) {
  return {
    authHeader: reader.headerName(keys.authHeader) ?? 'Authorization',
    authScheme: reader.authScheme(keys.authScheme),
    headers: reader.headers(keys.headers),
    timeoutMs: reader.seconds(keys.timeout, DEFAULT_UPSTREAM_TIMEOUT, 1, 600) * 1000,
    tokenHelp: reader.url(keys.tokenHelp, 'a page where people make a token', { optional: true }),
    tools: readToolPolicy(reader, keys.tools, keys.toolsFor, keys),
    rateLimit: readRateLimit(reader, keys.rateLimit, env),
    audit: readAudit(reader, keys.audit),
  };
}

const AUDIT_ARGUMENTS: readonly AuditArguments[] = ['none', 'keys', 'full'];
const AUDIT_HINT = 'a JSON object such as {"arguments":"keys"}';

/** `audit: { arguments }` (UPSTREAM_AUDIT for the single upstream); unset: arguments are not kept. */
function readAudit(reader: Reader, key: string): UpstreamAuditConfig {
  const object = reader.jsonObject(key, AUDIT_HINT);
  if (!object) return { arguments: 'none' };
  const { arguments: kept, ...rest } = object;
  for (const unknown of Object.keys(rest)) reader.problem(`${key}.${unknown}`, 'is not an audit setting: use arguments');
  if (kept === undefined) return { arguments: 'none' };
  if (typeof kept !== 'string' || !(AUDIT_ARGUMENTS as readonly string[]).includes(kept)) {
    reader.problem(`${key}.arguments`, 'must be "none", "keys" (the argument names) or "full" (the arguments, capped at 4 KiB)');
    return { arguments: 'none' };
  }
  return { arguments: kept as AuditArguments };
}

/**
 * The name of another variable that holds a secret (`"token": "GITHUB_TOKEN"`): UPSTREAMS may be
 * committed in wrangler.jsonc, so it names secrets and never holds them.
 */
function reference(reader: Reader, key: string, env: Readonly<Record<string, unknown>>): string | undefined {
  const variable = reader.string(key, '', { optional: true });
  if (variable === undefined) return undefined;
  if (!VARIABLE_NAME.test(variable) || variable.length > 64) {
    reader.problem(key, 'must be the NAME of a Worker secret or variable (e.g. GITHUB_TOKEN), never the token itself');
    return undefined;
  }
  if (GATEWAY_SECRETS.has(variable) || variable.startsWith('ACCESS_')) {
    reader.problem(key, `names ${variable}, one of the gateway's own settings: give the upstream a secret of its own`);
    return undefined;
  }
  if (env[variable] === undefined || env[variable] === null || env[variable] === '') {
    // Not echoed: a token pasted here by mistake would otherwise end up in the logs.
    reader.problem(key, 'names a variable that is not set: add that secret with `npx wrangler secret put <NAME>` (locally, a line in .dev.vars)');
    return undefined;
  }
  return variable;
}

function referencedSecret(reader: Reader, key: string, env: Readonly<Record<string, unknown>>): string | undefined {
  const variable = reference(reader, key, env);
  if (variable === undefined) return undefined;
  if (typeof env[variable] !== 'string') {
    reader.problem(key, 'names a variable that does not hold the token as text');
    return undefined;
  }
  // Read like any other setting, so an example value left in it is caught (and named) too.
  return new Reader(env, reader.problems).string(variable, `the token for ${reader.label(key).replace(/\.token$/, '')}`);
}

/** Without a shared token, everyone the allowlist names must have their own. */
function requireOwnTokens(
  reader: Reader,
  tokenKey: string,
  userTokensKey: string,
  allowlist: PeopleList | undefined,
  userTokens: ReadonlyMap<string, string>,
): void {
  const token = reader.label(tokenKey);
  const own = reader.label(userTokensKey);
  if (userTokens.size === 0) {
    reader.problem(
      tokenKey,
      `is required: set the token the gateway sends upstream, give every user their own in ${own}, or let people bring their own (userSupplied)`,
    );
    return;
  }
  const uncovered = allowlist ? [...allowlist.emails].filter((email) => !userTokens.has(email)) : [];
  if (uncovered.length > 0) {
    const entries = `${uncovered.length} allowed email${uncovered.length === 1 ? ' has' : 's have'}`;
    reader.problem(tokenKey, `is required because ${entries} no ${own} entry: add theirs or set ${token}`);
  }
}

/** How pages name an upstream: its title, else its name; undefined for the single `/mcp` one. */
export function upstreamLabel(upstream: UpstreamConfig): string | undefined {
  return upstream.title ?? (upstream.name === SINGLE_UPSTREAM_NAME ? undefined : upstream.name);
}

/** How a sentence names an upstream: its label, else "this MCP server". */
export function serverName(upstream: UpstreamConfig): string {
  return upstreamLabel(upstream) ?? 'this MCP server';
}
