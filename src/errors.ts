import { html, htmlPage } from './lib/html';

/**
 * A failure on a leg a person sees in their browser (consent, Access callback). Rendered as a
 * small page: `message` is what the person reads, `reason` goes to the log only.
 */
export class PageError extends Error {
  override readonly name = 'PageError';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly userMessage: string,
    readonly reason: string,
    options?: { cause?: unknown; headers?: Headers },
  ) {
    super(reason, options?.cause === undefined ? undefined : { cause: options.cause });
    this.headers = options?.headers;
  }
  readonly headers: Headers | undefined;
}

/** Renders a `PageError` with a reference id that matches its log line. */
export function renderPageError(error: PageError): Response {
  const reference = crypto.randomUUID();
  console.warn(JSON.stringify({ event: 'page_error', reference, status: error.status, reason: error.reason }));
  return htmlPage(error.title, html`<h1>${error.title}</h1><p>${error.userMessage}</p><p class="muted">Reference: <code>${reference}</code></p>`, {
    status: error.status,
    headers: error.headers,
  });
}

/** Anything unexpected: logged once with its cause, answered with a generic page. */
export function renderInternalError(error: unknown): Response {
  const reference = crypto.randomUUID();
  console.error(JSON.stringify({ event: 'internal_error', reference, error: describe(error) }));
  return htmlPage(
    'Something went wrong',
    html`<h1>Something went wrong</h1><p>The gateway could not finish this request. Try again in a moment.</p><p class="muted">Reference: <code>${reference}</code></p>`,
    { status: 500 },
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : 'non-error thrown';
}
