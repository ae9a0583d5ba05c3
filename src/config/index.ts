/**
 * Configuration: every variable and secret is read and validated here, once per environment,
 * and the rest of the gateway only ever sees the typed `Config`.
 */
import { type ConfigProblem, type EmailAllowlist, Reader } from './reader';
import { readUpstreams, type UpstreamConfig } from './upstreams';

export { type ConfigProblem, type EmailAllowlist, isLoopbackHost } from './reader';
export { DEFAULT_UPSTREAM_TIMEOUT, SINGLE_UPSTREAM_NAME, type UpstreamConfig, upstreamLabel } from './upstreams';

export interface AccessConfig {
  clientId: string;
  clientSecret: string;
  authorizationUrl: string;
  tokenUrl: string;
  jwksUrl: string;
  /** Expected `iss` of Access's ID tokens. */
  issuer: string;
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
  allowedEmails: EmailAllowlist | undefined;
  /** Who may see and manage everyone's connections on /connections. */
  adminEmails: EmailAllowlist | undefined;
  /** Every upstream, the single-upstream `/mcp` first when configured; never empty. */
  upstreams: readonly UpstreamConfig[];
  accessTokenTtl: number;
  refreshTokenTtl: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`misconfigured: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
  }
}

export const DEFAULT_ACCESS_TOKEN_TTL = 86_400;
export const DEFAULT_REFRESH_TOKEN_TTL = 2_592_000;

const ACCESS_URL_HINT = 'https://<team>.cloudflareaccess.com/cdn-cgi/access/sso/oidc/<client_id>/';

/** Parses and validates the Worker's environment; throws one `ConfigError` listing every problem. */
export function loadConfig(env: Readonly<Record<string, unknown>>): Config {
  const problems: ConfigProblem[] = [];
  const reader = new Reader(env, problems);

  const authorizationUrl = reader.url('ACCESS_AUTHORIZATION_URL', `the Access app's authorization endpoint, ${ACCESS_URL_HINT}authorization`);
  const tokenUrl = reader.url('ACCESS_TOKEN_URL', `the Access app's token endpoint, ${ACCESS_URL_HINT}token`);
  const jwksUrl = reader.url('ACCESS_JWKS_URL', `the Access app's key endpoint, ${ACCESS_URL_HINT}jwks`);
  // `iss` is compared exactly, so an explicit ACCESS_ISSUER is used as written, not re-serialized.
  const issuer = reader.url('ACCESS_ISSUER', 'the expected "iss" of Access ID tokens', { optional: true })
    ? String(env.ACCESS_ISSUER).trim()
    : authorizationUrl && defaultIssuer(authorizationUrl);
  const accessUrls = [authorizationUrl, tokenUrl, jwksUrl].filter((u): u is URL => u !== undefined);

  const access: AccessConfig = {
    clientId: reader.string('ACCESS_CLIENT_ID', "the Access app's client ID"),
    clientSecret: reader.string('ACCESS_CLIENT_SECRET', "the Access app's client secret"),
    authorizationUrl: authorizationUrl?.href ?? '',
    tokenUrl: tokenUrl?.href ?? '',
    jwksUrl: jwksUrl?.href ?? '',
    issuer: issuer ?? '',
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
    tokenKeys: readTokenKeys(reader, upstreams.some((u) => u.userSupplied)),
    allowedEmails,
    adminEmails: reader.allowlist('ADMIN_EMAILS'),
    upstreams,
    accessTokenTtl: reader.seconds('ACCESS_TOKEN_TTL', DEFAULT_ACCESS_TOKEN_TTL, 60, 2_592_000),
    refreshTokenTtl: reader.seconds('REFRESH_TOKEN_TTL', DEFAULT_REFRESH_TOKEN_TTL, 60, 31_536_000),
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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

/** Access for SaaS issues ID tokens whose `iss` is the endpoint base without `/authorization`. */
function defaultIssuer(authorizationUrl: URL): string {
  const issuer = new URL(authorizationUrl.href);
  issuer.search = '';
  issuer.pathname = issuer.pathname.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  return issuer.href.replace(/\/$/, '');
}
