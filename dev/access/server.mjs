// @ts-check
/**
 * A local stand-in for one Cloudflare Access for SaaS (OIDC) app, built on oidc-provider. It keeps
 * Access's URL shape, so the gateway is configured exactly as in production:
 *
 *   issuer     http://127.0.0.1:<port>/cdn-cgi/access/sso/oidc/<client_id>
 *   endpoints  <issuer>/authorization, <issuer>/token, <issuer>/jwks, <issuer>/userinfo
 *   discovery  <issuer>/.well-known/openid-configuration
 *
 * and what Access does for our app: code flow with PKCE S256 required, the client secret sent in the
 * body (client_secret_post), RS256 ID tokens carrying `email` and `name`, and `groups` when the
 * sign-in asks for that scope, and refresh tokens (an Access app setting there, whatever the
 * scopes; rotated at every use here, the strictest case) so the local stack re-validates at every
 * refresh (issue #19). Signing in asks only for an email; the consent step is granted
 * automatically, as Access does for its own SaaS apps.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider, { interactionPolicy } from 'oidc-provider';
import { renderLoginPage } from './login-page.mjs';
import { createMemoryAdapter } from './memory-adapter.mjs';

/** @typedef {import('./login-page.mjs').DemoUser} DemoUser */

/**
 * @typedef {object} AccessStandInOptions
 * @property {number} port  where to listen on 127.0.0.1 (0: any free port)
 * @property {string} clientId
 * @property {string} clientSecret
 * @property {string[]} redirectUris  the gateway's /callback URLs
 * @property {readonly DemoUser[]} users  shown on the sign-in page (anyone may still type an email)
 * @property {(line: string) => void} [log]
 */

/**
 * @typedef {object} AccessStandIn
 * @property {string} issuer
 * @property {{ authorization: string, token: string, jwks: string, discovery: string }} urls
 * @property {() => Promise<void>} close
 */

const LOGIN_PATH = '/cdn-cgi/access/login/';
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const MAX_FORM_BYTES = 4096;

/** Starts the stand-in; resolves once it listens. */
export async function startAccessStandIn(/** @type {AccessStandInOptions} */ options) {
  const log = options.log ?? (() => {});
  const server = createServer();
  const port = await listen(server, options.port);
  const prefix = `/cdn-cgi/access/sso/oidc/${encodeURIComponent(options.clientId)}`;
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  const provider = createProvider(issuer, options);
  // oidc-provider ships no types; its context objects are typed `*` (any) where they appear.
  provider.on('server_error', (/** @type {*} */ _ctx, /** @type {Error} */ error) => log(`error: ${error.message}`));
  provider.on('authorization.error', (/** @type {*} */ _ctx, /** @type {Error} */ error) => log(`authorization refused: ${error.message}`));
  provider.on('grant.success', (/** @type {*} */ ctx) => {
    // The gateway re-validating a grant (issue #19); the token itself is never logged.
    if (ctx.oidc.params?.grant_type === 'refresh_token')
      log(`refreshed: ${emailFromAccountId(String(ctx.oidc.entities.Account?.accountId ?? '')) ?? 'unknown account'}`);
  });
  provider.on('grant.error', (/** @type {*} */ _ctx, /** @type {Error} */ error) => log(`token request refused: ${error.message}`));

  const oidc = provider.callback();
  server.on('request', (req, res) => {
    const url = req.url ?? '/';
    if (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) {
      // oidc-provider builds its URLs from the part of originalUrl that precedes req.url.
      Object.assign(req, { originalUrl: url, url: url.slice(prefix.length) || '/' });
      oidc(req, res);
      return;
    }
    if (url.startsWith(LOGIN_PATH)) {
      handleLogin(provider, options, req, res, log).catch((error) => {
        log(`sign-in page failed: ${error instanceof Error ? error.message : String(error)}`);
        if (!res.headersSent) sendHtml(res, 400, '<h1>This sign-in has expired</h1><p>Go back to your app and connect again.</p>');
      });
      return;
    }
    sendHtml(res, 404, '<h1>Not found</h1>');
  });

  return {
    issuer,
    urls: {
      authorization: `${issuer}/authorization`,
      token: `${issuer}/token`,
      jwks: `${issuer}/jwks`,
      discovery: `${issuer}/.well-known/openid-configuration`,
    },
    close: () => closeServer(server),
  };
}

/** @param {string} issuer @param {AccessStandInOptions} options */
function createProvider(issuer, options) {
  // Access's sessions last hours; this one asks on every sign-in instead, so switching demo
  // users (an allowed one, then one the gateway refuses) needs no cookie clearing.
  const policy = interactionPolicy.base();
  policy
    .get('login')
    ?.checks.add(
      new interactionPolicy.Check('demo_asks_every_time', 'the stand-in asks for an email on every sign-in', (/** @type {*} */ ctx) =>
        ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT,
      ),
    );

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `stand-in-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };

  return new Provider(issuer, {
    adapter: createMemoryAdapter(),
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        client_name: 'MCP OAuth gateway (local)',
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [/** @type {any} */ (jwk)] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    routes: { authorization: '/authorization', token: '/token', jwks: '/jwks', userinfo: '/userinfo' },
    // `groups`, as Access for SaaS offers it: the person's IdP groups, only when the sign-in asks.
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // Access puts the email in the ID token itself; oidc-provider would keep it for /userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    // Only what Access offers its SaaS apps: the code flow, no logout, PAR or DPoP.
    responseTypes: ['code'],
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      dPoP: { enabled: false },
    },
    interactions: { policy, url: (/** @type {*} */ _ctx, /** @type {{ uid: string }} */ interaction) => `${LOGIN_PATH}${interaction.uid}` },
    async loadExistingGrant(/** @type {*} */ ctx) {
      // First-party app: consent is implied, as on Access's own login page.
      const { oidc } = ctx;
      if (!oidc.session?.accountId || !oidc.client) return undefined;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(oidc.client.clientId);
      if (grantId) {
        const existing = await oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' ') || 'openid email profile');
      await grant.save();
      return grant;
    },
    async findAccount(/** @type {*} */ _ctx, /** @type {string} */ accountId) {
      const email = emailFromAccountId(accountId);
      if (!email) return undefined;
      const user = options.users.find((u) => u.email === email);
      const name = user?.name ?? nameFromEmail(email);
      return { accountId, claims: () => ({ sub: accountId, email, email_verified: true, name, groups: user?.groups ?? [] }) };
    },
    // Access issues refresh tokens when the app allows them, not on `offline_access`; they outlive
    // the sign-in session (and need the grant they belong to), rotate at every use, and are refused
    // (invalid_grant) once the person's account is gone.
    issueRefreshToken: async (/** @type {*} */ _ctx, /** @type {*} */ client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    rotateRefreshToken: () => true,
    ttl: { Interaction: 600, Session: 600, Grant: 1_209_600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600, RefreshToken: 1_209_600 },
  });
}

/**
 * GET shows the form; POST signs in (or cancels) and returns to oidc-provider.
 * @param {Provider} provider
 * @param {AccessStandInOptions} options
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @param {(line: string) => void} log
 */
async function handleLogin(provider, options, req, res, log) {
  const details = await provider.interactionDetails(req, res);
  const client = await provider.Client.find(String(details.params.client_id));
  const page = { action: `${LOGIN_PATH}${details.uid}`, clientName: client?.clientName ?? 'this app', users: options.users };
  if (req.method === 'GET') return sendHtml(res, 200, renderLoginPage(page));
  if (req.method !== 'POST') return sendHtml(res, 405, '<h1>Method not allowed</h1>');

  const form = new URLSearchParams(await readBody(req));
  if (form.get('action') === 'cancel') {
    log('sign-in cancelled');
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the person cancelled the sign-in' });
  }
  const email = (form.get('email') ?? '').trim().toLowerCase();
  if (!EMAIL.test(email)) {
    return sendHtml(res, 400, renderLoginPage({ ...page, email, error: 'Enter an email address, such as alice@example.com.' }));
  }
  log(`signed in: ${email}`);
  return provider.interactionFinished(req, res, { login: { accountId: accountIdFor(email) } });
}

// The account id (and so the ID token's `sub`) is opaque, as Access's is, yet reversible here so
// that the stand-in keeps no user table: hex of the email, after a short hash that makes it look
// like an id rather than an address.
function accountIdFor(/** @type {string} */ email) {
  const tag = createHash('sha256').update(email).digest('hex').slice(0, 8);
  return `${tag}-${Buffer.from(email).toString('hex')}`;
}

function emailFromAccountId(/** @type {string} */ accountId) {
  const [tag, hex] = accountId.split('-');
  if (!tag || !hex) return undefined;
  const email = Buffer.from(hex, 'hex').toString();
  return accountIdFor(email) === accountId ? email : undefined;
}

function nameFromEmail(/** @type {string} */ email) {
  const local = email.split('@')[0] ?? email;
  return local.charAt(0).toUpperCase() + local.slice(1);
}

/** @param {import('node:http').IncomingMessage} req */
async function readBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > MAX_FORM_BYTES) throw new Error('form too large');
  }
  return body;
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {string} html */
function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}

/** @param {import('node:http').Server} server @param {number} port @returns {Promise<number>} */
function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/** @param {import('node:http').Server} server @returns {Promise<void>} */
function closeServer(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Browsers keep connections alive; without this, close() waits for them to time out.
    server.closeAllConnections();
  });
}
