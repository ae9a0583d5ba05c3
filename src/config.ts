/**
 * Configuration: every variable and secret is read and validated here, once per environment,
 * and the rest of the gateway only ever sees the typed `Config`.
 */

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

export interface UpstreamConfig {
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
}

export interface EmailAllowlist {
  emails: ReadonlySet<string>;
  /** Domains, lowercased, without the leading "@". */
  domains: ReadonlySet<string>;
}

export interface Config {
  access: AccessConfig;
  /** Signs the remembered-consent cookie. */
  cookieSecret: string;
  /** Undefined: anyone Cloudflare Access lets in. */
  allowedEmails: EmailAllowlist | undefined;
  upstream: UpstreamConfig;
  accessTokenTtl: number;
  refreshTokenTtl: number;
}

export interface ConfigProblem {
  /** The variable to fix; the only part that leaves the Worker (on /health). */
  variable: string;
  /** How to fix it. Never contains the variable's value. */
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`misconfigured: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
  }
}

export const DEFAULT_ACCESS_TOKEN_TTL = 86_400;
export const DEFAULT_REFRESH_TOKEN_TTL = 2_592_000;
export const DEFAULT_UPSTREAM_TIMEOUT = 30;

const ACCESS_URL_HINT = 'https://<team>.cloudflareaccess.com/cdn-cgi/access/sso/oidc/<client_id>/';
// RFC 9110 §5.1 field-name token.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII and spaces: no CR/LF, which would let a value inject another header.
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

type RawEnv = Record<string, unknown>;

/** Parses and validates the Worker's environment; throws one `ConfigError` listing every problem. */
export function loadConfig(env: RawEnv): Config {
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
    problems.push({
      variable: 'COOKIE_ENCRYPTION_KEY',
      message: 'must be at least 32 characters; generate one with `openssl rand -hex 32`',
    });
  }

  const allowedEmails = reader.allowlist('ALLOWED_EMAILS');
  const userTokens = reader.userTokens('USER_TOKENS');
  const token = reader.string('UPSTREAM_TOKEN', '', { optional: true });
  if (token === undefined) requireOwnTokens(allowedEmails, userTokens, problems);

  const upstream: UpstreamConfig = {
    url: reader.url('UPSTREAM_URL', "the upstream MCP server's endpoint, e.g. https://mcp.example.com/mcp") ?? new URL('https://invalid.'),
    token,
    userTokens,
    authHeader: reader.headerName('UPSTREAM_AUTH_HEADER') ?? 'Authorization',
    authScheme: reader.string('UPSTREAM_AUTH_SCHEME', '', { optional: true, allowEmpty: true }) ?? 'Bearer',
    headers: reader.headers('UPSTREAM_HEADERS'),
    timeoutMs: reader.seconds('UPSTREAM_TIMEOUT', DEFAULT_UPSTREAM_TIMEOUT, 1, 600) * 1000,
  };
  if (!HEADER_VALUE.test(upstream.authScheme) || upstream.authScheme.includes(' ')) {
    problems.push({ variable: 'UPSTREAM_AUTH_SCHEME', message: 'must be one word such as Bearer or token, or empty for a bare key' });
  }

  const config: Config = {
    access,
    cookieSecret: cookieSecret ?? '',
    allowedEmails,
    upstream,
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
      result = loadConfig(env as RawEnv);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      result = error;
    }
    cache.set(env, result);
  }
  return result;
}

/** Access for SaaS issues ID tokens whose `iss` is the endpoint base without `/authorization`. */
function defaultIssuer(authorizationUrl: URL): string {
  const issuer = new URL(authorizationUrl.href);
  issuer.search = '';
  issuer.pathname = issuer.pathname.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  return issuer.href.replace(/\/$/, '');
}

/** Without a shared token, everyone the allowlist names must have their own. */
function requireOwnTokens(
  allowlist: EmailAllowlist | undefined,
  userTokens: ReadonlyMap<string, string>,
  problems: ConfigProblem[],
): void {
  if (userTokens.size === 0) {
    problems.push({
      variable: 'UPSTREAM_TOKEN',
      message: 'is required: set the token the gateway sends upstream, or give every user their own in USER_TOKENS',
    });
    return;
  }
  const uncovered = allowlist ? [...allowlist.emails].filter((email) => !userTokens.has(email)) : [];
  if (uncovered.length > 0) {
    problems.push({
      variable: 'UPSTREAM_TOKEN',
      message: `is required because ${uncovered.length} ALLOWED_EMAILS entr${uncovered.length === 1 ? 'y has' : 'ies have'} no USER_TOKENS entry: add theirs or set UPSTREAM_TOKEN`,
    });
  }
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

interface ReadOptions {
  optional?: boolean;
  allowEmpty?: boolean;
}

/** Reads one variable at a time, recording a problem instead of throwing so all are reported. */
class Reader {
  constructor(
    private readonly env: RawEnv,
    private readonly problems: ConfigProblem[],
  ) {}

  string(name: string, what: string, options?: ReadOptions & { optional?: false }): string;
  string(name: string, what: string, options: ReadOptions): string | undefined;
  string(name: string, what: string, options: ReadOptions = {}): string | undefined {
    const value = this.env[name];
    if (value === undefined || value === null || (value === '' && !options.allowEmpty)) {
      if (!options.optional) this.problem(name, `is not set: set it to ${what} (see .dev.vars.example)`);
      return undefined;
    }
    if (typeof value !== 'string') {
      this.problem(name, 'must be a string');
      return undefined;
    }
    return value.trim();
  }

  url(name: string, what: string, options: ReadOptions = {}): URL | undefined {
    const value = this.string(name, what, options);
    if (value === undefined) return undefined;
    const url = URL.canParse(value) ? new URL(value) : undefined;
    const secure = url?.protocol === 'https:' || (url?.protocol === 'http:' && isLoopbackHost(url.hostname));
    if (!url || !secure || url.username || url.password || url.hash) {
      this.problem(name, `must be an absolute https URL (http only on localhost) without credentials or fragment: ${what}`);
      return undefined;
    }
    return url;
  }

  seconds(name: string, fallback: number, min: number, max: number): number {
    const value = this.string(name, '', { optional: true });
    if (value === undefined) return fallback;
    const seconds = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!(seconds >= min && seconds <= max)) {
      this.problem(name, `must be a whole number of seconds from ${min} to ${max}; unset it for the default, ${fallback}`);
      return fallback;
    }
    return seconds;
  }

  headerName(name: string): string | undefined {
    const value = this.string(name, '', { optional: true });
    if (value !== undefined && !HEADER_NAME.test(value)) {
      this.problem(name, 'must be an HTTP header name such as Authorization or X-API-Key');
      return undefined;
    }
    return value;
  }

  headers(name: string): Array<readonly [string, string]> {
    const object = this.jsonObject(name, 'a JSON object of header name to value, e.g. {"X-MCP-Readonly":"true"}');
    const headers: Array<readonly [string, string]> = [];
    for (const [key, value] of Object.entries(object ?? {})) {
      if (!HEADER_NAME.test(key) || typeof value !== 'string' || !HEADER_VALUE.test(value)) {
        this.problem(name, 'every key must be a header name and every value a single-line string');
        return [];
      }
      headers.push([key, value]);
    }
    return headers;
  }

  allowlist(name: string): EmailAllowlist | undefined {
    const value = this.string(name, '', { optional: true });
    if (value === undefined) return undefined;
    const entries = value
      .split(',')
      .map((entry) => entry.trim().toLowerCase())
      .filter(Boolean);
    const emails = new Set<string>();
    const domains = new Set<string>();
    for (const entry of entries) {
      if (/^@[^@\s]+\.[^@\s]+$/.test(entry)) domains.add(entry.slice(1));
      else if (/^[^@\s]+@[^@\s]+$/.test(entry)) emails.add(entry);
      else {
        this.problem(name, 'must be comma-separated emails and @domain entries, e.g. alice@example.com,@example.org');
        return undefined;
      }
    }
    if (entries.length === 0) {
      this.problem(name, 'lists nobody: name at least one email or @domain, or unset it to allow everyone Access lets in');
      return undefined;
    }
    return { emails, domains };
  }

  userTokens(name: string): Map<string, string> {
    const object = this.jsonObject(name, 'a JSON object of email to upstream token, e.g. {"alice@example.com":"..."}');
    const tokens = new Map<string, string>();
    for (const [email, token] of Object.entries(object ?? {})) {
      if (!email.includes('@') || typeof token !== 'string' || token.trim() === '') {
        this.problem(name, 'every key must be an email and every value a non-empty token string');
        return new Map();
      }
      tokens.set(email.trim().toLowerCase(), token.trim());
    }
    return tokens;
  }

  private jsonObject(name: string, what: string): Record<string, unknown> | undefined {
    const value = this.string(name, '', { optional: true });
    if (value === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      // The parser's message quotes the input, which may be a secret: say only what is expected.
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.problem(name, `must be ${what}`);
      return undefined;
    }
    return parsed as Record<string, unknown>;
  }

  private problem(variable: string, message: string): void {
    this.problems.push({ variable, message });
  }
}
