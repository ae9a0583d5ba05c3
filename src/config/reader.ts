/**
 * Reads settings one at a time from a source (the Worker's environment, or one `UPSTREAMS`
 * entry), recording a problem instead of throwing so that every mistake is reported at once.
 * A problem names the setting (`UPSTREAM_URL`, `UPSTREAMS.github.url`) and never its value.
 */
import { PEOPLE_HINT, type PeopleList, parsePeopleList } from './people';

export interface ConfigProblem {
  /** The setting to fix; the only part that leaves the Worker (on /health). */
  variable: string;
  /** How to fix it. Never contains the setting's value. */
  message: string;
}

export interface ReadOptions {
  optional?: boolean;
  allowEmpty?: boolean;
}

// RFC 9110 §5.1 field-name token.
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII and spaces: no CR/LF, which would let a value inject another header.
export const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/** The example values in .dev.vars.example (`replace-with-…`, the `your-team` team name). */
const PLACEHOLDER = /replace-with-|(?:^|\/\/)your-team(?:\.cloudflareaccess\.com|\/|$)/i;

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

export class Reader {
  constructor(
    private readonly source: Readonly<Record<string, unknown>>,
    readonly problems: ConfigProblem[],
    /** Put before every key in a problem: `UPSTREAMS.github.` for an upstream's settings. */
    private readonly prefix = '',
  ) {}

  /** The setting's full name, as problems print it. */
  label(key: string): string {
    return `${this.prefix}${key}`;
  }

  has(key: string): boolean {
    const value = this.source[key];
    return value !== undefined && value !== null && value !== '';
  }

  problem(key: string, message: string): void {
    this.problems.push({ variable: this.label(key), message });
  }

  string(key: string, what: string, options?: ReadOptions & { optional?: false }): string;
  string(key: string, what: string, options: ReadOptions): string | undefined;
  string(key: string, what: string, options: ReadOptions = {}): string | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || (value === '' && !options.allowEmpty)) {
      if (!options.optional) this.problem(key, `is not set: set it to ${what} (see .dev.vars.example)`);
      return undefined;
    }
    if (typeof value !== 'string') {
      this.problem(key, 'must be a string');
      return undefined;
    }
    if (PLACEHOLDER.test(value)) {
      // Copied from .dev.vars.example and never filled in: better refused now than at the first login.
      // The value is still returned, so that no second problem says the setting is missing.
      this.problem(key, `still holds the example value from .dev.vars.example: set it to ${what || 'the real value'}`);
    }
    return value.trim();
  }

  /** What pages call something: one line of at most 80 characters. */
  title(key: string): string | undefined {
    const title = this.string(key, '', { optional: true });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (title !== undefined && (title.length > 80 || !/^[^\x00-\x1f\x7f]*$/.test(title))) this.problem(key, 'must be one line of at most 80 characters');
    return title;
  }

  url(key: string, what: string, options: ReadOptions = {}): URL | undefined {
    const value = this.string(key, what, options);
    if (value === undefined) return undefined;
    const url = URL.canParse(value) ? new URL(value) : undefined;
    const secure = url?.protocol === 'https:' || (url?.protocol === 'http:' && isLoopbackHost(url.hostname));
    if (!url || !secure || url.username || url.password || url.hash) {
      this.problem(key, `must be an absolute https URL (http only on localhost) without credentials or fragment: ${what}`);
      return undefined;
    }
    return url;
  }

  /** Whole seconds, from a number (a JSON setting) or a string of digits (a variable). */
  seconds(key: string, fallback: number, min: number, max: number): number {
    return this.wholeNumber(key, 'seconds', fallback, min, max);
  }

  /** A whole number of `unit` from min to max; unset is the fallback. */
  wholeNumber(key: string, unit: string, fallback: number, min: number, max: number): number {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return fallback;
    const seconds = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!(Number.isInteger(seconds) && seconds >= min && seconds <= max)) {
      this.problem(key, `must be a whole number of ${unit} from ${min} to ${max}; unset it for the default, ${fallback}`);
      return fallback;
    }
    return seconds;
  }

  /** `true`/`false`, as JSON or as the text of a variable; unset is false. */
  boolean(key: string): boolean {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return false;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    this.problem(key, 'must be true or false');
    return false;
  }

  headerName(key: string): string | undefined {
    const value = this.string(key, '', { optional: true });
    if (value !== undefined && !HEADER_NAME.test(value)) {
      this.problem(key, 'must be an HTTP header name such as Authorization or X-API-Key');
      return undefined;
    }
    return value;
  }

  /** A scheme word before the credential (`Bearer`, `token`), or empty for a bare key. */
  authScheme(key: string): string {
    const scheme = this.string(key, '', { optional: true, allowEmpty: true }) ?? 'Bearer';
    if (!HEADER_VALUE.test(scheme) || scheme.includes(' ') || scheme.includes('\t')) {
      this.problem(key, 'must be one word such as Bearer or token, or empty for a bare key');
      return 'Bearer';
    }
    return scheme;
  }

  headers(key: string): Array<readonly [string, string]> {
    const object = this.jsonObject(key, 'a JSON object of header name to value, e.g. {"X-MCP-Readonly":"true"}');
    const headers: Array<readonly [string, string]> = [];
    for (const [name, value] of Object.entries(object ?? {})) {
      if (!HEADER_NAME.test(name) || typeof value !== 'string' || !HEADER_VALUE.test(value)) {
        this.problem(key, 'every key must be a header name and every value a single-line string');
        return [];
      }
      headers.push([name, value]);
    }
    return headers;
  }

  /** Comma-separated people entries (src/config/people.ts), or in JSON an array of them. */
  allowlist(key: string): PeopleList | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return undefined;
    const raw = typeof value === 'string' ? value.split(',') : Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
    const entries = (raw ?? []).map((entry: string) => entry.trim()).filter(Boolean);
    const list = raw === undefined ? undefined : parsePeopleList(entries);
    if (!list) {
      this.problem(key, `must be comma-separated entries, each ${PEOPLE_HINT}`);
      return undefined;
    }
    if (entries.length === 0) {
      this.problem(key, 'lists nobody: name at least one email, @domain or group:<name>, or unset it to allow everyone Access lets in');
      return undefined;
    }
    return list;
  }

  /** A JSON object of email to that person's own upstream token. */
  userTokens(key: string): Map<string, string> {
    const object = this.jsonObject(key, 'a JSON object of email to upstream token, e.g. {"alice@example.com":"..."}');
    const tokens = new Map<string, string>();
    for (const [email, token] of Object.entries(object ?? {})) {
      if (!email.includes('@') || typeof token !== 'string' || token.trim() === '') {
        this.problem(key, 'every key must be an email and every value a non-empty token string');
        return new Map();
      }
      tokens.set(email.trim().toLowerCase(), token.trim());
    }
    return tokens;
  }

  /** A JSON object, given as one (a `vars` entry in wrangler.jsonc) or as its text (a secret). */
  jsonObject(key: string, what: string): Record<string, unknown> | undefined {
    const value = this.source[key];
    if (value === undefined || value === null || value === '') return undefined;
    let parsed: unknown = value;
    if (typeof value === 'string') {
      try {
        parsed = JSON.parse(value);
      } catch {
        // The parser's message quotes the input, which may be a secret: say only what is expected.
        parsed = undefined;
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.problem(key, `must be ${what}`);
      return undefined;
    }
    return parsed as Record<string, unknown>;
  }
}
