// @ts-check
/**
 * What the benches share: a stand-in Cloudflare Access, the gateway under `wrangler dev` in its own
 * process group, an MCP client's sign-in over HTTP, and timing helpers. proxy-latency.mjs and
 * aggregate.mjs use it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import { applyLocalD1Migrations } from '../dev/lib/wrangler.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ACCESS_CLIENT_ID = 'bench-access-client';
export const ACCESS_CLIENT_SECRET = randomBytes(16).toString('hex');
const CLIENT_REDIRECT = 'http://localhost:33418/callback';

/**
 * The target with the session its path gives on initialize (the upstream's id, or the gateway's
 * handle for it), as a client sends on every later request.
 * @param {{ url: string, headers: Record<string, string> }} target
 */
export async function inSession(target) {
  const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {} } };
  const response = await fetch(target.url, { method: 'POST', headers: target.headers, body: JSON.stringify(initialize) });
  await response.arrayBuffer();
  const session = response.headers.get('Mcp-Session-Id');
  if (response.status !== 200 || !session) throw new Error(`${target.url}: initialize answered ${response.status} without a session`);
  return { ...target, headers: { ...target.headers, 'Mcp-Session-Id': session } };
}

/** @param {string} [token] */
export function rpcHeaders(token) {
  return {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2025-11-25',
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
  };
}

/**
 * @param {{ url: string, headers: Record<string, string> }} target
 * @param {string | undefined} body
 */
export async function timed(target, body, method = 'POST', status = 200) {
  const started = performance.now();
  const response = await fetch(target.url, { method, headers: target.headers, body });
  await response.arrayBuffer();
  if (response.status !== status) throw new Error(`${target.url} answered ${response.status}`);
  return performance.now() - started;
}

/** @param {number[]} values */
export function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return { median: at(0.5), p99: at(0.99) };
}

/** @param {number} ms */
export function fmt(ms) {
  return ms.toFixed(2).padStart(7);
}

export async function freePort() {
  const server = createNetServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/**
 * `wrangler dev` in its own process group (stopping only its PID can leave workerd running), with
 * the configuration in an env file and KV state in a throwaway directory.
 */
export async function startGateway(
  /** @type {string} */ work,
  /** @type {Record<string, string>} */ vars,
  /** @type {Array<() => Promise<unknown>>} */ cleanups,
  entry = 'bench/kv-counting-worker.js',
) {
  const port = await freePort();
  const envFile = join(work, 'bench.env');
  await writeFile(
    envFile,
    Object.entries(vars)
      .map(([name, value]) => `${name}=${value}\n`)
      .join(''),
    { mode: 0o600 },
  );
  // The audit trail's tables in the bench's local D1, as `npm start` makes them.
  await applyLocalD1Migrations({ config: join(ROOT, 'wrangler.jsonc'), persistTo: join(work, 'state'), cwd: ROOT });
  const logPath = join(work, 'wrangler.log');
  const log = createWriteStream(logPath);
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
      'dev',
      entry,
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(await freePort()),
      '--persist-to',
      join(work, 'state'),
      '--env-file',
      envFile,
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
    },
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const pgid = /** @type {number} */ (child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {}
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000, 'timeout'));
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {}
    }
  });

  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    const health = await fetch(`${origin}/health`).catch(() => undefined);
    if (health?.ok) break;
    if (health && health.status !== 200) throw new Error(`gateway misconfigured: ${await health.text()}`);
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`wrangler dev did not start; its log:\n${(await readFile(logPath, 'utf8').catch(() => '')).slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { origin, pgid };
}

/** The MCP client's side of the login; `signIn.lastClientId` is the client it registered. */
export async function signIn(/** @type {string} */ origin, /** @type {string} */ resourcePath) {
  /** @type {Map<string, string>} */
  const jar = new Map();
  const browser = async (/** @type {string} */ url, /** @type {RequestInit} */ init = {}) => {
    const headers = new Headers(init.headers);
    if (jar.size > 0) headers.set('Cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return response;
  };
  const expectStatus = async (/** @type {Response} */ response, /** @type {number} */ status, /** @type {string} */ step) => {
    if (response.status !== status) throw new Error(`${step}: expected ${status}, got ${response.status}: ${(await response.text()).slice(0, 300)}`);
    return response;
  };

  const registration = await expectStatus(
    await fetch(`${origin}/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Latency bench',
        redirect_uris: [CLIENT_REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      }),
    }),
    201,
    'register',
  );
  const { client_id: clientId } = /** @type {{ client_id: string }} */ (await registration.json());

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authorize = new URL('/authorize', origin);
  for (const [name, value] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: CLIENT_REDIRECT,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    scope: 'mcp',
    resource: `${origin}${resourcePath}`,
  })) {
    authorize.searchParams.set(name, value);
  }
  const consent = await expectStatus(await browser(authorize.href), 200, 'authorize');
  const handle = /name="handle" value="([^"]+)"/.exec(await consent.text())?.[1];
  if (!handle) throw new Error('authorize: no consent form');
  const toAccess = await expectStatus(
    await browser(`${origin}/authorize`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: origin },
      body: new URLSearchParams({ handle, decision: 'approve' }),
    }),
    302,
    'consent',
  );
  const fromAccess = await expectStatus(await browser(toAccess.headers.get('Location') ?? ''), 302, 'access login');
  const back = await expectStatus(await browser(fromAccess.headers.get('Location') ?? ''), 302, 'callback');
  const code = new URL(back.headers.get('Location') ?? '', origin).searchParams.get('code') ?? '';
  const tokens = await expectStatus(
    await fetch(`${origin}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        resource: `${origin}${resourcePath}`,
      }),
    }),
    200,
    'token',
  );
  signIn.lastClientId = clientId;
  return /** @type {{ access_token: string }} */ (await tokens.json()).access_token;
}

/**
 * A stand-in Cloudflare Access for SaaS app: the person "signs in" the moment the authorization
 * endpoint is visited; the token endpoint checks the client secret, redirect URI and PKCE, and
 * returns an RS256 ID token with the nonce; the JWKS endpoint publishes the key.
 */
export async function startStandInAccess() {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256');
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'bench-key', alg: 'RS256', use: 'sig' };
  /** @type {Map<string, { redirectUri: string, challenge: string, nonce: string }>} */
  const codes = new Map();
  const path = `/cdn-cgi/access/sso/oidc/${ACCESS_CLIENT_ID}`;
  let base = '';

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', base);
    const send = (/** @type {number} */ status, /** @type {unknown} */ body) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === `${path}/authorization`) {
      const code = randomBytes(16).toString('hex');
      const param = (/** @type {string} */ name) => url.searchParams.get(name) ?? '';
      codes.set(code, { redirectUri: param('redirect_uri'), challenge: param('code_challenge'), nonce: param('nonce') });
      const back = new URL(param('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', param('state'));
      res.writeHead(302, { Location: back.href });
      return res.end();
    }
    if (req.method === 'GET' && url.pathname === `${path}/jwks`) return send(200, { keys: [jwk] });
    if (req.method === 'POST' && url.pathname === `${path}/token`) {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const form = new URLSearchParams(raw);
      if (form.get('client_id') !== ACCESS_CLIENT_ID || form.get('client_secret') !== ACCESS_CLIENT_SECRET) return send(401, { error: 'invalid_client' });
      const pending = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      if (!pending || pending.redirectUri !== form.get('redirect_uri')) return send(400, { error: 'invalid_grant' });
      if ((await oauth.calculatePKCECodeChallenge(form.get('code_verifier') ?? '')) !== pending.challenge) return send(400, { error: 'invalid_grant' });
      const idToken = await new jose.SignJWT({ email: 'bench@example.com', nonce: pending.nonce })
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
        .setIssuer(base + path)
        .setAudience(ACCESS_CLIENT_ID)
        .setSubject('bench-user')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey);
      return send(200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 600, id_token: idToken });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('access stand-in did not bind');
  base = `http://127.0.0.1:${address.port}`;
  return {
    base: `${base}${path}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}
