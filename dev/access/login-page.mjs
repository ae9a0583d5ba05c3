// @ts-check
/** The stand-in's sign-in page: HTML only, every value escaped. */

/** @typedef {{ email: string, name: string, allowed: boolean, groups?: readonly string[] }} DemoUser */

/** @param {unknown} value */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * @param {{ action: string, clientName: string, users: readonly DemoUser[], email?: string, error?: string }} page
 * @returns {string}
 */
export function renderLoginPage({ action, clientName, users, email = '', error }) {
  const a = escapeHtml(action);
  const userButtons = users
    .map(
      (u) =>
        `<li><form method="post" action="${a}"><input type="hidden" name="email" value="${escapeHtml(u.email)}">` +
        `<button name="action" value="login">${escapeHtml(u.email)}</button> ${escapeHtml(u.name)}, ` +
        `${u.allowed ? 'allowed by the gateway' : '<strong>not</strong> allowed by the gateway'}</form></li>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign in (local stand-in for Cloudflare Access)</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}
.note{background:#fff4e5;border:1px solid #f0b35a;padding:.5rem .75rem;border-radius:6px;font-size:.9rem}
.error{color:#b00020}input[type=email]{font:inherit;padding:.4rem;width:16rem}button{font:inherit;padding:.3rem .8rem}
ul{padding-left:1.2rem}li form{display:inline}
</style></head><body>
<p class="note">Local stand-in for Cloudflare Access. Any email signs in here; the gateway then decides who is allowed.</p>
<h1>Sign in to ${escapeHtml(clientName)}</h1>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${a}">
<label>Email <input type="email" name="email" value="${escapeHtml(email)}" required autofocus autocomplete="email"></label>
<button name="action" value="login">Sign in</button>
<button name="action" value="cancel" formnovalidate>Cancel</button>
</form>
<h2>Demo users</h2>
<ul>${userButtons}</ul>
</body></html>`;
}
