/**
 * A failure on a leg a person sees in their browser (consent, the Access callback, the token step,
 * /connections). Each has a kind from a closed set, and the kind decides the status, the title and
 * the one wording the person reads; `reason` goes to the log only. Where to start again (the MCP
 * app, or /connections) is a parameter, never a new wording.
 */
import { emit } from '../audit';
import { html, htmlPage } from '../lib';

export type PageErrorKind =
  | 'stale_link'
  | 'method_not_allowed'
  | 'invalid_request'
  | 'unverified_client'
  | 'cross_site'
  | 'sign_in_declined'
  | 'sign_in_failed'
  | 'sign_in_malformed'
  | 'no_email'
  | 'malformed_groups'
  | 'not_allowed'
  | 'no_credential'
  | 'session_ended'
  | 'not_yours'
  | 'admins_only'
  | 'not_found'
  | 'unknown_action'
  | 'unknown_server';

/** Where the person starts again: their MCP app, or the /connections page. */
export type StartAgain = 'app' | 'connections';

export interface PageErrorOptions {
  cause?: unknown;
  headers?: Headers | undefined;
  /** Default: the MCP app. */
  startAgain?: StartAgain;
  /** Who was refused (`not_allowed`, `no_credential`). */
  email?: string;
  /** What they were refused (`not_allowed`, `no_credential`): an upstream's label, or "this server". */
  server?: string;
  /** What was wrong with the request (`invalid_request`), as the library describes it. */
  detail?: string;
}

const START_AGAIN: Record<StartAgain, string> = {
  app: 'Go back to your app and connect again.',
  connections: 'Open /connections and try again.',
};

interface Wording {
  status: number;
  title: string;
  message(again: string, options: PageErrorOptions): string;
}

const KINDS: Record<PageErrorKind, Wording> = {
  stale_link: {
    status: 400,
    title: 'This sign-in link no longer works',
    message: (again) => `It has expired, was already used, or was opened in a different browser from the one that started signing in. ${again}`,
  },
  method_not_allowed: { status: 405, title: 'Method not allowed', message: (again) => again },
  invalid_request: { status: 400, title: 'This connection request is not valid', message: (again, o) => `${o.detail ?? 'It is malformed'}. ${again}` },
  unverified_client: {
    status: 400,
    title: 'This app could not be verified',
    message: (again) => `Its client metadata document could not be fetched or is invalid. ${again}`,
  },
  cross_site: { status: 403, title: 'Request refused', message: (again) => `This form can only be sent from this site. ${again}` },
  sign_in_declined: {
    status: 403,
    title: 'Sign-in was declined',
    message: (again) =>
      `The sign-in was cancelled, or Cloudflare Access did not let this account in. ${again} If this account should get in, ask whoever manages access to this server.`,
  },
  sign_in_failed: {
    status: 502,
    title: 'Sign-in failed',
    message: (again) => `The gateway could not verify your sign-in with Cloudflare Access. ${again} If it keeps happening, tell whoever runs this server.`,
  },
  sign_in_malformed: { status: 400, title: 'Sign-in failed', message: (again) => `The sign-in response was malformed. ${again}` },
  no_email: {
    status: 403,
    title: 'Sign-in failed',
    message: () => 'Cloudflare Access did not share an email address for this account, and the gateway needs one.',
  },
  malformed_groups: {
    status: 502,
    title: 'Sign-in failed',
    message: (again) =>
      `Cloudflare Access sent a list of groups for this account that the gateway cannot read, so it cannot tell what you may use. ${again} If it keeps happening, tell whoever runs this server.`,
  },
  not_allowed: {
    status: 403,
    title: 'Not allowed',
    message: (_, o) => `${o.email} is not allowed to use ${o.server ?? 'this server'}. Ask whoever runs it to add you.`,
  },
  no_credential: {
    status: 403,
    title: 'Not allowed',
    message: (_, o) => `${o.email} has no credential for ${o.server ?? 'the server behind this gateway'}. Ask whoever runs it to add one.`,
  },
  session_ended: { status: 403, title: 'Your session has ended', message: (again) => `Sign in again to manage your connections. ${again}` },
  not_yours: { status: 403, title: 'Not allowed', message: () => 'Only the person whose connections these are can do that.' },
  admins_only: { status: 403, title: 'Not allowed', message: () => "Only an admin of this gateway can see everyone's activity." },
  not_found: { status: 404, title: 'Not found', message: (again) => `That app is not connected to this account (any more). ${again}` },
  unknown_action: { status: 400, title: 'Unknown action', message: (again) => again },
  unknown_server: { status: 400, title: 'Unknown server', message: (again) => `That server takes no token of yours. ${again}` },
};

export class PageError extends Error {
  override readonly name = 'PageError';
  readonly status: number;
  readonly title: string;
  readonly userMessage: string;
  readonly headers: Headers | undefined;

  constructor(
    readonly kind: PageErrorKind,
    readonly reason: string,
    options: PageErrorOptions = {},
  ) {
    super(reason, options.cause === undefined ? undefined : { cause: options.cause });
    const wording = KINDS[kind];
    this.status = wording.status;
    this.title = wording.title;
    this.userMessage = wording.message(START_AGAIN[options.startAgain ?? 'app'], options);
    this.headers = options.headers;
  }
}

/** Renders a `PageError` with a reference id that matches its log line. */
export function renderPageError(error: PageError): Response {
  const reference = crypto.randomUUID();
  emit({ event: 'page_error', reference, status: error.status, reason: error.reason });
  return htmlPage(error.title, html`<h1>${error.title}</h1><p>${error.userMessage}</p><p class="muted">Reference: <code>${reference}</code></p>`, {
    status: error.status,
    headers: error.headers,
  });
}

/** Anything unexpected: logged once with its cause, answered with a generic page. */
export function renderInternalError(error: unknown): Response {
  const reference = crypto.randomUUID();
  emit({ event: 'internal_error', reference, error: describe(error) });
  return htmlPage(
    'Something went wrong',
    html`<h1>Something went wrong</h1><p>The gateway could not finish this request. Try again in a moment.</p><p class="muted">Reference: <code>${reference}</code></p>`,
    { status: 500 },
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : 'non-error thrown';
}
