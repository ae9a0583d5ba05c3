/**
 * Configuration: every variable and secret is read and validated here, once per environment,
 * and the rest of the gateway only ever sees the typed `Config`.
 */

import { type AggregateConfig, readAggregates } from './aggregates';
import type { PeopleList } from './people';
import { type ConfigProblem, Reader } from './reader';
import { readUpstreams, type UpstreamConfig } from './upstreams';

export type { AggregateConfig } from './aggregates';
export type { NameRules } from './name-rules';
export { MAX_GROUP_NAME, PEOPLE_HINT, type PeopleList } from './people';
export type { RateLimitConfig, ToolPolicy, ToolRules } from './policy';
export { type ConfigProblem, isLoopbackHost } from './reader';
export { type GatewayResource, gatewayResources, resourceLabel } from './resources';
export {
  type AuditArguments,
  DEFAULT_UPSTREAM_TIMEOUT,
  SINGLE_UPSTREAM_NAME,
  serverName,
  type UpstreamAuditConfig,
  type UpstreamConfig,
  upstreamLabel,
} from './upstreams';

export interface AccessConfig {
  clientId: string;
  clientSecret: string;
  authorizationUrl: string;
  tokenUrl: string;
  jwksUrl: string;
  /** Expected `iss` of Access's ID tokens. */
  issuer: string;
  /** ACCESS_SCOPES: what every Access sign-in asks for, space-separated; always includes `openid`. */
  scopes: string;
  /** True only when the Access URLs are plain http on a loopback host (the local stand-in). */
  allowInsecureRequests: boolean;
}

export interface Config {
  access: AccessConfig;
  /** Signs the remembered-consent cookie, the /connections session and legacy SSE endpoints. */
  cookieSecret: string;
  /** Encrypts people's own tokens: the current secret first, then TOKEN_ENCRYPTION_KEY_PREVIOUS. Empty without userSupplied upstreams. */
  tokenKeys: readonly string[];
  /** Undefined: anyone Cloudflare Access lets in. */
  allowedEmails: PeopleList | undefined;
  /** Who may see and manage everyone's connections on /connections. */
  adminEmails: PeopleList | undefined;
  /** Every upstream, the single-upstream `/mcp` first when configured; never empty. */
  upstreams: readonly UpstreamConfig[];
  /** AGGREGATES: connectors over several upstreams; empty when unset. */
  aggregates: readonly AggregateConfig[];
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** A grant's absolute lifetime since its Access sign-in, in seconds, however often it refreshes. */
  maxGrantAge: number;
  /** The audit trail: days a row is kept (AUDIT_RETENTION_DAYS), and the most rows kept (AUDIT_MAX_ROWS). */
  audit: { retentionDays: number; maxRows: number };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`misconfigured: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
  }
}

export const DEFAULT_ACCESS_TOKEN_TTL = 86_400;
export const DEFAULT_REFRESH_TOKEN_TTL = 2_592_000;
export const DEFAULT_MAX_GRANT_AGE = 2_592_000;
export const DEFAULT_AUDIT_RETENTION_DAYS = 90;
export const DEFAULT_AUDIT_MAX_ROWS = 1_000_000;

const ACCESS_URL_HINT = 'https://<team>.cloudflareaccess.com/cdn-cgi/access/sso/oidc/<client_id>/';
const OR_TEAM = ', or set ACCESS_TEAM_DOMAIN instead';
// A Zero Trust team name is one DNS label.
const TEAM_DOMAIN = /^(?:https:\/\/)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.cloudflareaccess\.com)?\/?$/i;

/** Parses and validates the Worker's environment; throws one `ConfigError` listing every problem. */
export function loadConfig(env: Readonly<Record<string, unknown>>): Config {
  const problems: ConfigProblem[] = [];
  const reader = new Reader(env, problems);

  const before = problems.length;
  const clientId = reader.string('ACCESS_CLIENT_ID', "the Access app's client ID");
  // ACCESS_TEAM_DOMAIN with ACCESS_CLIENT_ID stands for the three endpoint URLs; explicit ones win.
  const team = accessTeamBase(reader);
  const shortcut = team && clientId && problems.length === before ? teamEndpoints(team, clientId) : undefined;
  const urls = new Reader(shortcut ? { ...shortcut, ...definedOnly(env) } : env, problems);
  // With the shortcut chosen but unusable (no client ID, a bad team name), its own problem says what to set.
  const optional = { optional: reader.has('ACCESS_TEAM_DOMAIN') && !shortcut };
  const authorizationUrl = urls.url('ACCESS_AUTHORIZATION_URL', `the Access app's authorization endpoint, ${ACCESS_URL_HINT}authorization${OR_TEAM}`, optional);
  const tokenUrl = urls.url('ACCESS_TOKEN_URL', `the Access app's token endpoint, ${ACCESS_URL_HINT}token${OR_TEAM}`, optional);
  const jwksUrl = urls.url('ACCESS_JWKS_URL', `the Access app's key endpoint, ${ACCESS_URL_HINT}jwks${OR_TEAM}`, optional);
  // `iss` is compared exactly, so an explicit ACCESS_ISSUER is used as written, not re-serialized.
  const issuer = reader.url('ACCESS_ISSUER', 'the expected "iss" of Access ID tokens', { optional: true })
    ? String(env.ACCESS_ISSUER).trim()
    : authorizationUrl && defaultIssuer(authorizationUrl);
  const accessUrls = [authorizationUrl, tokenUrl, jwksUrl].filter((u): u is URL => u !== undefined);

  const access: AccessConfig = {
    clientId: clientId ?? '',
    clientSecret: reader.string('ACCESS_CLIENT_SECRET', "the Access app's client secret"),
    authorizationUrl: authorizationUrl?.href ?? '',
    tokenUrl: tokenUrl?.href ?? '',
    jwksUrl: jwksUrl?.href ?? '',
    issuer: issuer ?? '',
    scopes: readScopes(reader),
    allowInsecureRequests: accessUrls.some((u) => u.protocol === 'http:'),
  };

  const cookieSecret = reader.string('COOKIE_ENCRYPTION_KEY', 'at least 32 random characters, e.g. from `openssl rand -hex 32`');
  if (cookieSecret && cookieSecret.length < 32) {
    reader.problem('COOKIE_ENCRYPTION_KEY', 'must be at least 32 characters; generate one with `openssl rand -hex 32`');
  }

  const allowedEmails = reader.allowlist('ALLOWED_EMAILS');
  const upstreams = readUpstreams(env, problems, allowedEmails);
  const config: Config = {
    access,
    cookieSecret: cookieSecret ?? '',
    tokenKeys: readTokenKeys(
      reader,
      upstreams.some((u) => u.userSupplied),
    ),
    allowedEmails,
    adminEmails: reader.allowlist('ADMIN_EMAILS'),
    upstreams,
    aggregates: readAggregates(env, problems, upstreams),
    accessTokenTtl: reader.seconds('ACCESS_TOKEN_TTL', DEFAULT_ACCESS_TOKEN_TTL, 60, 2_592_000),
    refreshTokenTtl: reader.seconds('REFRESH_TOKEN_TTL', DEFAULT_REFRESH_TOKEN_TTL, 60, 31_536_000),
    // At least an hour, so a number meant as days or hours fails here rather than every login.
    maxGrantAge: reader.seconds('MAX_GRANT_AGE', DEFAULT_MAX_GRANT_AGE, 3_600, 31_536_000),
    audit: {
      retentionDays: reader.wholeNumber('AUDIT_RETENTION_DAYS', 'days', DEFAULT_AUDIT_RETENTION_DAYS, 1, 3_650),
      maxRows: reader.wholeNumber('AUDIT_MAX_ROWS', 'rows', DEFAULT_AUDIT_MAX_ROWS, 1_000, 50_000_000),
    },
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

export const DEFAULT_ACCESS_SCOPES = 'openid email profile';
// RFC 6749 §3.3 scope-token: visible ASCII other than `"` and `\`.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** ACCESS_SCOPES, normalized to single spaces; the default is what every Access app always got. */
function readScopes(reader: Reader): string {
  const value = reader.string('ACCESS_SCOPES', '', { optional: true });
  if (value === undefined) return DEFAULT_ACCESS_SCOPES;
  const scopes = value.split(/\s+/).filter(Boolean);
  if (!scopes.includes('openid') || !scopes.every((scope) => SCOPE_TOKEN.test(scope))) {
    reader.problem('ACCESS_SCOPES', `must be space-separated scopes of visible characters that include openid, e.g. "${DEFAULT_ACCESS_SCOPES} groups"`);
    return DEFAULT_ACCESS_SCOPES;
  }
  return [...new Set(scopes)].join(' ');
}

const cache = new WeakMap<object, Config | ConfigError>();

/** `loadConfig`, memoized per environment object: the environment is fixed for an isolate's life. */
export function configFor(env: object): Config | ConfigError {
  let result = cache.get(env);
  if (!result) {
    try {
      result = loadConfig(env as Record<string, unknown>);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      result = error;
    }
    cache.set(env, result);
  }
  return result;
}

/**
 * TOKEN_ENCRYPTION_KEY encrypts what people paste; required once an upstream takes their tokens.
 * TOKEN_ENCRYPTION_KEY_PREVIOUS still decrypts, during a rotation.
 */
function readTokenKeys(reader: Reader, needed: boolean): string[] {
  const hint = 'at least 32 random characters, e.g. from `openssl rand -hex 32`, kept apart from COOKIE_ENCRYPTION_KEY';
  const keys: string[] = [];
  for (const name of ['TOKEN_ENCRYPTION_KEY', 'TOKEN_ENCRYPTION_KEY_PREVIOUS']) {
    const key = reader.string(name, `${hint}: an upstream takes people's own tokens (userSupplied)`, { optional: !needed || name.endsWith('PREVIOUS') });
    if (key === undefined) continue;
    if (key.length < 32) reader.problem(name, `must be at least 32 characters: ${hint}`);
    else keys.push(key);
  }
  if (keys.length === 1 && reader.has('TOKEN_ENCRYPTION_KEY_PREVIOUS') && !reader.has('TOKEN_ENCRYPTION_KEY')) {
    reader.problem('TOKEN_ENCRYPTION_KEY', 'is not set but TOKEN_ENCRYPTION_KEY_PREVIOUS is: set the new key, keep the old one as PREVIOUS');
  }
  return keys;
}

/** The upstream served at this gateway path (`/mcp`, `/<name>/mcp`), if any. */
export function upstreamAt(config: Config, path: string): UpstreamConfig | undefined {
  return config.upstreams.find((upstream) => upstream.path === path);
}

/** The team's Access origin from ACCESS_TEAM_DOMAIN (`team`, `team.cloudflareaccess.com` or its https URL). */
function accessTeamBase(reader: Reader): string | undefined {
  const value = reader.string('ACCESS_TEAM_DOMAIN', 'your Zero Trust team name, e.g. myteam for myteam.cloudflareaccess.com', { optional: true });
  if (value === undefined) return undefined;
  const team = TEAM_DOMAIN.exec(value)?.[1];
  if (!team) {
    reader.problem('ACCESS_TEAM_DOMAIN', 'must be your Zero Trust team name: myteam, myteam.cloudflareaccess.com or https://myteam.cloudflareaccess.com');
    return undefined;
  }
  return `https://${team.toLowerCase()}.cloudflareaccess.com`;
}

/** The endpoints of an Access for SaaS (OIDC) app, which all share one base. */
function teamEndpoints(teamBase: string, clientId: string): Record<string, string> {
  const base = `${teamBase}/cdn-cgi/access/sso/oidc/${encodeURIComponent(clientId)}`;
  return { ACCESS_AUTHORIZATION_URL: `${base}/authorization`, ACCESS_TOKEN_URL: `${base}/token`, ACCESS_JWKS_URL: `${base}/jwks` };
}

function definedOnly(env: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== null && value !== ''));
}

/** Access for SaaS issues ID tokens whose `iss` is the endpoint base without `/authorization`. */
function defaultIssuer(authorizationUrl: URL): string {
  const issuer = new URL(authorizationUrl.href);
  issuer.search = '';
  issuer.pathname = issuer.pathname.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  return issuer.href.replace(/\/$/, '');
}
