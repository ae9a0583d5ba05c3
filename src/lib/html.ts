/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** A value already escaped or built from escaped parts; `html` interpolates these unchanged. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type HtmlValue = SafeHtml | string | number | undefined | false | readonly HtmlValue[];

/** Tagged template that escapes every interpolated value unless it is `SafeHtml`. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

function render(value: HtmlValue): string {
  if (value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

// Pages carry no script and load nothing: styles are inline, images are not used.
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:10vh auto;padding:0 1.25rem;color:#1f2328}
h1{font-size:1.4rem;margin:0 0 1rem}.muted{color:#59636e;font-size:.9rem}.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6rem .8rem}
code{background:#f6f8fa;border-radius:4px;padding:.1rem .3rem}.buttons{display:flex;gap:.75rem;margin-top:1.5rem}
button{font:inherit;padding:.55rem 1.3rem;border-radius:6px;border:1px solid #d1d9e0;background:#f6f8fa;cursor:pointer}
button.primary{background:#1f883d;border-color:#1f883d;color:#fff}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{color:#59636e}dd{margin:0;overflow-wrap:anywhere}
input[type=password]{width:100%;box-sizing:border-box;font:inherit;padding:.45rem;border:1px solid #d1d9e0;border-radius:6px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d1d9e0;vertical-align:top;overflow-wrap:break-word}td:last-child,td code{white-space:nowrap}
th{color:#59636e;font-weight:500}td form{margin:0}td button{padding:.2rem .7rem;font-size:.9rem}h2{font-size:1.1rem;margin:1.5rem 0 .3rem}`;

/** A complete page response: no script, not frameable, never cached. */
export function htmlPage(title: string, body: SafeHtml, init: { status?: number; headers?: Headers } = {}): Response {
  const headers = init.headers ?? new Headers();
  headers.set('Content-Type', 'text/html; charset=utf-8');
  headers.set('Content-Security-Policy', PAGE_CSP);
  headers.set('X-Frame-Options', 'DENY');
  headers.set('Cache-Control', 'no-store');
  // Not no-referrer: with it, browsers send `Origin: null` on the consent form's POST, which
  // the CSRF check must refuse. same-origin still keeps client URLs from leaking to Access.
  headers.set('Referrer-Policy', 'same-origin');
  headers.set('X-Content-Type-Options', 'nosniff');
  const page = html`<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><style>${new SafeHtml(STYLE)}</style>
<body>${body}</body></html>`;
  return new Response(page.value, { status: init.status ?? 200, headers });
}
