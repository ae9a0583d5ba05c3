/**
 * A person at a browser, without the browser: follows redirects by hand with a cookie jar, reads
 * the gateway's consent page and the stand-in Access login page, and presses their buttons by
 * posting their forms. The Chromium test walks the same pages for real; this one is fast and lets
 * every other end-to-end test sign in.
 */

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/** Host-keyed cookies with path matching: enough for the gateway and oidc-provider. */
class CookieJar {
  private readonly byHost = new Map<string, Cookie[]>();

  store(url: URL, response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key = '', val = ''] = attribute.trim().split('=');
        if (key.toLowerCase() === 'path') path = val || '/';
        if (key.toLowerCase() === 'max-age' && Number(val) <= 0) expired = true;
        if (key.toLowerCase() === 'expires' && Date.parse(val) < Date.now()) expired = true;
      }
      const cookies = (this.byHost.get(url.hostname) ?? []).filter((c) => c.name !== name || c.path !== path);
      if (!expired) cookies.push({ name, value, path });
      this.byHost.set(url.hostname, cookies);
    }
  }

  header(url: URL): string | undefined {
    const cookies = (this.byHost.get(url.hostname) ?? []).filter((c) => url.pathname.startsWith(c.path));
    return cookies.length ? cookies.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

export interface Visit {
  url: URL;
  response: Response;
  /** The body, read once (empty for redirects). */
  text: string;
}

export type Decision = 'approve' | 'deny';

/** In `tokensToPaste`: skip this token page instead of pasting a token. */
export const SKIP = Symbol('skip the token page');
export type OwnToken = string | typeof SKIP;

/** Where the sign-in ended: the client's redirect URI with its query, or the page that stopped it. */
export type Outcome = { kind: 'redirect'; url: URL } | { kind: 'page'; status: number; url: URL; text: string };

export class Person {
  private readonly jar = new CookieJar();
  /** Every page and redirect seen, for leak checks. */
  readonly seen: Visit[] = [];
  /**
   * What this person does, in turn, each time the gateway asks for their own upstream token:
   * paste the token, or press the page's skip button (`SKIP`).
   */
  tokensToPaste: OwnToken[] = [];

  constructor(
    readonly email: string,
    /** Where to stop following: the client's redirect URI (its origin and path). */
    private readonly stopAt: (url: URL) => boolean,
  ) {}

  /** One request with this person's cookies; never follows redirects itself. */
  async visit(url: URL, init: RequestInit = {}): Promise<Visit> {
    const headers = new Headers(init.headers);
    const cookie = this.jar.header(url);
    if (cookie) headers.set('Cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.store(url, response);
    const visit = { url, response, text: await response.text() };
    this.seen.push(visit);
    return visit;
  }

  /**
   * From the authorization URL a client opened to wherever the flow ends: consent (approved or
   * denied), the Access login with this person's email, the callback, and the client's redirect.
   */
  async signIn(authorizationUrl: URL | string, decision: Decision = 'approve'): Promise<Outcome> {
    let visit = await this.visit(new URL(authorizationUrl));
    for (let hops = 0; hops < 20; hops++) {
      const { response, url, text } = visit;
      const location = response.headers.get('Location');
      if (response.status >= 300 && response.status < 400 && location) {
        const next = new URL(location, url);
        if (this.stopAt(next)) return { kind: 'redirect', url: next };
        visit = await this.visit(next);
        continue;
      }
      const form = response.status === 200 ? pageForm(text, url) : undefined;
      if (form?.kind === 'consent') {
        visit = await this.post(form.action, { handle: form.fields.handle ?? '', decision });
      } else if (form?.kind === 'login') {
        visit = await this.post(form.action, { email: this.email, action: 'login' });
      } else if (form?.kind === 'token' && this.tokensToPaste.length > 0) {
        const token = this.tokensToPaste.shift() ?? '';
        if (token === SKIP) {
          const skip = skipControl(text, url);
          if (!skip) throw new Error(`the token page at ${url.pathname} offers no way to skip it`);
          visit = skip.fields ? await this.post(skip.action, skip.fields) : await this.visit(skip.action);
        } else {
          visit = await this.post(form.action, { state: form.fields.state ?? '', token });
        }
      } else {
        return { kind: 'page', status: response.status, url, text };
      }
    }
    throw new Error('sign-in did not finish within 20 steps');
  }

  private post(action: URL, fields: Record<string, string>): Promise<Visit> {
    return this.visit(action, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: action.origin },
      body: new URLSearchParams(fields),
    });
  }
}

/** Recognises the pages a person acts on by their forms: consent, Access's login, the token page. */
function pageForm(text: string, base: URL) {
  const action = /<form method="post" action="([^"]+)"/.exec(text)?.[1];
  if (!action) return undefined;
  const url = new URL(decodeEntities(action), base);
  const handle = /name="handle" value="([^"]+)"/.exec(text)?.[1];
  if (handle) return { kind: 'consent' as const, action: url, fields: { handle: decodeEntities(handle) } };
  const state = /name="state" value="([^"]+)"/.exec(text)?.[1];
  if (state && /name="token"/.test(text)) return { kind: 'token' as const, action: url, fields: { state: decodeEntities(state) } };
  // The login page asks for an email in a field of its own; other pages may carry one hidden.
  if (/<input type="email" name="email"/.test(text)) return { kind: 'login' as const, action: url, fields: {} };
  return undefined;
}

/**
 * The token page's way to go on without a token: a form whose button says or sends "skip" (its
 * hidden fields and that button's name and value are posted), or a link that says "skip".
 */
function skipControl(text: string, base: URL): { action: URL; fields?: Record<string, string> } | undefined {
  for (const [, action = '', inner = ''] of text.matchAll(/<form method="post" action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    const button = [...inner.matchAll(/<button([^>]*)>([\s\S]*?)<\/button>/g)].find(([, attributes = '', label = '']) => /skip/i.test(attributes + label));
    if (!button) continue;
    const fields: Record<string, string> = {};
    for (const [, name = '', value = ''] of inner.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[name] = decodeEntities(value);
    const name = /name="([^"]+)"/.exec(button[1] ?? '')?.[1];
    if (name) fields[name] = decodeEntities(/value="([^"]*)"/.exec(button[1] ?? '')?.[1] ?? '');
    return { action: new URL(decodeEntities(action), base), fields };
  }
  const link = [...text.matchAll(/<a [^>]*href="([^"]+)"[^>]*>([\s\S]*?)<\/a>/g)].find(([, , label = '']) => /skip/i.test(label));
  return link ? { action: new URL(decodeEntities(link[1] ?? ''), base) } : undefined;
}

function decodeEntities(value: string): string {
  return value.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&amp;/g, '&');
}
