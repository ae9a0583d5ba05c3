// @ts-check
/**
 * The doctor's checks: a configuration before it is deployed (`checkSettings`), and a deployed
 * gateway from outside (`checkDeployment`). Each check prints one line, ✓ or ✗, what was checked
 * and how to fix it. No line carries a secret: tokens and the client secret are only sent, to the
 * servers they belong to, and URLs are printed without their query.
 */
import { reportRevalidation } from './doctor-revalidation.mjs';
import { loadWorkerConfig, workerUpstreams } from './worker-config.mjs';

/** @typedef {import('./worker-config.mjs').Config} Config */
/** @typedef {import('./worker-config.mjs').UpstreamConfig} UpstreamConfig */

const TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 1_000_000;
const ACCESS_APP = 'Zero Trust → Access → Applications → your SaaS app';

/** Counts failures and prints each line as it comes. */
export class Report {
  failures = 0;
  /** @param {(line: string) => void} [write] */
  constructor(write = (line) => console.log(line)) {
    this.write = write;
  }
  /** @param {string} what */
  pass(what) {
    this.write(`✓ ${what}`);
  }
  /** @param {string} what @param {string} fix */
  fail(what, fix) {
    this.failures++;
    this.write(`✗ ${what} — ${fix}`);
  }
  /** Something the doctor cannot check, or the next step. @param {string} what */
  note(what) {
    this.write(`· ${what}`);
  }
}

/**
 * Checks settings (the contents of `.dev.vars` / `.prod.vars`) with the Worker's own validation,
 * then the Access app and every upstream they point at.
 * @param {Record<string, string>} env @param {Report} report
 */
export async function checkSettings(env, report) {
  const loaded = loadWorkerConfig(env);
  if (!loaded.config) {
    for (const problem of loaded.problems) report.fail(problem.variable, problem.message);
    report.note('the Access app and the upstreams are checked once the configuration loads');
    return;
  }
  const { config } = loaded;
  const { aggregates } = config;
  const over = aggregates.map((a) => `${a.path} over ${a.upstreams.map((u) => u.name).join(', ')}`).join('; ');
  report.pass(
    `configuration loads: Access app ${config.access.clientId}, ${config.upstreams.length === 1 ? 'one upstream' : `${config.upstreams.length} upstreams`} (${config.upstreams.map((u) => u.path).join(', ')})${
      aggregates.length === 0 ? '' : `, ${aggregates.length === 1 ? 'one aggregate' : `${aggregates.length} aggregates`} (${over})`
    }`,
  );
  await checkAccess(config, report);
  for (const upstream of config.upstreams) await checkUpstream(upstream, report);
}

/** @param {Config} config @param {Report} report */
async function checkAccess(config, report) {
  const { access } = config;
  const fixUrls = `copy the app's endpoints from ${ACCESS_APP}, or set ACCESS_TEAM_DOMAIN and ACCESS_CLIENT_ID and unset the URLs`;
  // Access publishes discovery beside its endpoints, at the base the authorization URL shares.
  const discoveryUrl = new URL('.well-known/openid-configuration', new URL('.', access.authorizationUrl)).href;
  const discovery = await getJson(discoveryUrl);
  /** @type {Record<string, unknown> | undefined} */
  let document;
  if ('error' in discovery) {
    report.fail(
      `Access discovery document at ${printable(discoveryUrl)}: ${discovery.error}`,
      `ACCESS_AUTHORIZATION_URL (or ACCESS_TEAM_DOMAIN) does not point at an Access for SaaS app: ${fixUrls}`,
    );
  } else {
    document = discovery.json;
    report.pass(`Access discovery document answers at ${printable(discoveryUrl)}`);
    if (document.issuer === access.issuer) report.pass(`Access issuer matches: ${access.issuer}`);
    else
      report.fail(
        `Access says its issuer is ${String(document.issuer)}, the gateway expects ${access.issuer}`,
        'set ACCESS_ISSUER to the issuer Access names, or unset it to derive it from ACCESS_AUTHORIZATION_URL',
      );
    for (const [field, variable, configured] of /** @type {const} */ ([
      ['authorization_endpoint', 'ACCESS_AUTHORIZATION_URL', access.authorizationUrl],
      ['token_endpoint', 'ACCESS_TOKEN_URL', access.tokenUrl],
      ['jwks_uri', 'ACCESS_JWKS_URL', access.jwksUrl],
    ])) {
      const published = document[field];
      if (typeof published === 'string' && sameUrl(published, configured)) report.pass(`${variable} matches the discovery document's ${field}`);
      else
        report.fail(
          `${variable} is ${printable(configured)}, Access publishes ${field} ${typeof published === 'string' ? printable(published) : '(none)'}`,
          `set ${variable} to the published URL, or unset it and set ACCESS_TEAM_DOMAIN`,
        );
    }
  }

  const jwks = await getJson(access.jwksUrl);
  if ('error' in jwks) {
    report.fail(`ACCESS_JWKS_URL ${printable(access.jwksUrl)}: ${jwks.error}`, `the gateway checks ID token signatures with these keys: ${fixUrls}`);
  } else {
    const keys = Array.isArray(jwks.json.keys) ? jwks.json.keys : [];
    const signing = keys.filter((key) => key && typeof key === 'object' && typeof key.kty === 'string' && key.use !== 'enc');
    if (signing.length > 0) report.pass(`Access JWKS holds ${signing.length} signing key${signing.length === 1 ? '' : 's'}`);
    else report.fail(`ACCESS_JWKS_URL ${printable(access.jwksUrl)} holds no signing key`, `it must be the app's key endpoint (…/jwks): ${fixUrls}`);
  }

  await checkClientCredentials(access, report);
  if (document) reportRevalidation(document, config, report, ACCESS_APP);
}

/**
 * Sends the token endpoint a made-up code with the gateway's client credentials, as the callback
 * does (client_secret_post): `invalid_grant` means the credentials passed and only the code was
 * refused; `invalid_client` means Access does not know this client ID and secret.
 * @param {Config['access']} access @param {Report} report
 */
async function checkClientCredentials(access, report) {
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: 'mcp-oauth-gateway-doctor-invalid-code',
    redirect_uri: 'https://doctor.invalid/callback',
    code_verifier: 'mcp-oauth-gateway-doctor-code-verifier-0123456789',
    client_id: access.clientId,
    client_secret: access.clientSecret,
  });
  const answer = await request(access.tokenUrl, { method: 'POST', body, headers: { Accept: 'application/json' } });
  if ('error' in answer) {
    report.fail(`Access token endpoint ${printable(access.tokenUrl)}: ${answer.error}`, "set ACCESS_TOKEN_URL to the app's token endpoint (…/token)");
    return;
  }
  const json = await readJson(answer.response);
  const error = typeof json?.error === 'string' ? json.error : undefined;
  if (error === 'invalid_grant') {
    report.pass('Access token endpoint accepts the client ID and secret (a made-up code is refused with invalid_grant)');
  } else if (error === 'invalid_client' || answer.response.status === 401) {
    report.fail(
      'Access token endpoint refused the client ID or secret (invalid_client)',
      `copy ACCESS_CLIENT_ID and ACCESS_CLIENT_SECRET again from ${ACCESS_APP}`,
    );
  } else {
    report.fail(
      `Access token endpoint answered a made-up code with HTTP ${answer.response.status}${error ? ` ${error}` : ''}, not invalid_grant`,
      "set ACCESS_TOKEN_URL to the app's token endpoint (…/token)",
    );
  }
}

/** @param {UpstreamConfig} upstream @param {Report} report */
async function checkUpstream(upstream, report) {
  const single = upstream.name === 'mcp';
  const names = {
    url: single ? 'UPSTREAM_URL' : `UPSTREAMS.${upstream.name}.url`,
    token: single ? 'UPSTREAM_TOKEN' : `the secret UPSTREAMS.${upstream.name}.token names`,
    userTokens: single ? 'USER_TOKENS' : `the secret UPSTREAMS.${upstream.name}.userTokens names`,
    header: single ? 'UPSTREAM_AUTH_HEADER and UPSTREAM_AUTH_SCHEME' : `UPSTREAMS.${upstream.name}.authHeader and .authScheme`,
  };
  const where = `${upstream.path} → ${printable(upstream.url.href)}`;
  if (upstream.token !== undefined) {
    await probeUpstream(upstream, where, workerUpstreams.upstreamAuthHeader(upstream, ''), names.token, names, report);
  }
  for (const email of upstream.userTokens.keys()) {
    await probeUpstream(
      upstream,
      `${where} with ${email}'s own token`,
      workerUpstreams.upstreamAuthHeader(upstream, email),
      `${email}'s entry in ${names.userTokens}`,
      names,
      report,
    );
  }
  // Issue #8: tokens people enter themselves exist only after they sign in.
  if (/** @type {{ userSupplied?: unknown }} */ (upstream).userSupplied) {
    report.note(`${where}: people supply their own tokens, so none can be checked in advance`);
  } else if (upstream.token === undefined) {
    report.note(`${where}: no shared token; only the tokens listed in ${names.userTokens} can be checked in advance`);
  }
}

/**
 * Opens a conversation with the credential the gateway would send, in the revision the gateway
 * would pick (`server/discover`, else `initialize`), then `tools/list`: through the Worker's own
 * upstream client (src/upstreams/client.ts), so the doctor sends what the gateway sends.
 * @param {UpstreamConfig} upstream @param {string} where
 * @param {readonly [string, string] | undefined} credential
 * @param {string} tokenName  the setting to fix when the token is refused
 * @param {{ url: string, header: string }} names @param {Report} report
 */
async function probeUpstream(upstream, where, credential, tokenName, names, report) {
  const timeoutMs = upstream.timeoutMs;
  const notMcp = `${names.url} must be the server's MCP endpoint (Streamable HTTP), often ending in /mcp`;
  const refused = (/** @type {number} */ status) =>
    report.fail(`${where} refused the token (HTTP ${status})`, `renew ${tokenName} or give it the scopes the server needs; check ${names.header}`);
  // Each step is bounded as a whole, answers included (an SSE answer may never come).
  const opened = await workerUpstreams.openConversation({ ...workerUpstreams.linkFor(upstream, credential), signal: AbortSignal.timeout(timeoutMs) });
  if (opened.outcome === 'refused') return refused(opened.status);
  if (opened.outcome === 'failed') {
    const { called, method } = opened;
    if (called.outcome !== 'response') {
      report.fail(`${where} is unreachable: ${describeFailure(called, timeoutMs)}`, `check ${names.url} and that the server is up`);
      return;
    }
    const answered = rpcResult(called, timeoutMs);
    report.fail(`${where} did not answer ${method} as an MCP server (${'error' in answered ? answered.error : 'no result'})`, notMcp);
    return;
  }
  const server = /** @type {{ serverInfo?: { name?: unknown }, _meta?: Record<string, { name?: unknown } | undefined> }} */ (opened.server);
  const serverInfo = server.serverInfo ?? server._meta?.['io.modelcontextprotocol/serverInfo'];
  const serverName = typeof serverInfo?.name === 'string' ? serverInfo.name.slice(0, 60) : 'unnamed server';

  const listed = await workerUpstreams.callUpstream(
    { ...opened.link, signal: AbortSignal.timeout(timeoutMs) },
    { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} },
    MAX_BODY_BYTES,
  );
  const tools = rpcResult(listed, timeoutMs);
  // Ends the session a 2025-era server opened; servers may answer 405, which is fine.
  await opened.end();
  const status = listed.outcome === 'response' ? listed.response.status : 0;
  // server/discover may be answered without a token: tools/list is where a 2026-07-28 server refuses it.
  if (status === 401 || status === 403) return refused(status);
  if ('error' in tools) {
    report.fail(
      `${where}: MCP ${opened.revision} works (${serverName}) but tools/list failed (${tools.error})`,
      `check the token's scopes (${tokenName}) and any fixed headers the server needs`,
    );
    return;
  }
  const list = /** @type {{ tools?: unknown }} */ (tools.result).tools;
  const count = Array.isArray(list) ? list.length : 0;
  report.pass(`${where}: MCP ${opened.revision} works (${serverName}), tools/list returns ${count} tool${count === 1 ? '' : 's'}`);
}

/**
 * The JSON-RPC result of a call, or what went wrong, in words.
 * @param {import('../../src/upstreams/index.ts').CallResult} called @param {number} timeoutMs
 * @returns {{ result: Record<string, unknown> } | { error: string }}
 */
function rpcResult(called, timeoutMs) {
  if (called.outcome !== 'response') return { error: describeFailure(called, timeoutMs) };
  const { response, answer } = called;
  const type = (response.headers.get('Content-Type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const described = `HTTP ${response.status}${type ? `, ${type}` : ''}`;
  if (!response.ok || (type !== 'application/json' && type !== 'text/event-stream')) return { error: described };
  const message = /** @type {{ jsonrpc?: unknown, result?: unknown, error?: { code?: unknown, message?: unknown } } | undefined} */ (answer);
  if (message?.jsonrpc !== '2.0') return { error: `${described}, no JSON-RPC answer` };
  if (message.error) return { error: `JSON-RPC error ${String(message.error.code)}: ${String(message.error.message).slice(0, 120)}` };
  if (!message.result || typeof message.result !== 'object') return { error: `${described}, no result` };
  return { result: /** @type {Record<string, unknown>} */ (message.result) };
}

/**
 * Why the upstream client got no answer: its own deadline or the doctor's, or the fetch's error.
 * @param {{ outcome: string, cause?: unknown }} failed @param {number} timeoutMs
 */
function describeFailure(failed, timeoutMs) {
  if (failed.outcome === 'timeout' || failed.outcome === 'client_closed') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  return describeFetchError(failed.cause ?? {}, timeoutMs);
}

/**
 * Checks a deployed gateway from outside, as an MCP client and a person's browser see it.
 * @param {string} address  the gateway's origin (a path is ignored) @param {Report} report
 */
export async function checkDeployment(address, report) {
  const base = URL.canParse(address) ? new URL(address) : URL.canParse(`https://${address}`) ? new URL(`https://${address}`) : undefined;
  if (!base || (base.protocol !== 'https:' && base.protocol !== 'http:')) {
    report.fail(`${address} is not a URL`, "pass the gateway's address: --url https://<host>");
    return;
  }
  const origin = base.origin;
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(base.hostname);
  if (base.protocol === 'https:') report.pass(`${origin} uses https`);
  else if (loopback) report.note(`${origin} is plain http on loopback: fine for a local run; MCP clients need https for a deployment`);
  else report.fail(`${origin} is plain http`, 'MCP clients need https: use the workers.dev or custom-domain https URL');

  const health = await request(`${origin}/health`, { headers: { Accept: 'application/json' } });
  if ('error' in health) {
    report.fail(`${origin}/health: ${health.error}`, 'check the host name, and that `npx wrangler deploy` finished');
    return;
  }
  const healthJson = await readJson(health.response);
  if (health.response.status === 200 && healthJson?.ok === true) {
    report.pass(`${origin}/health answers ok: the deployed configuration loads`);
    // The audit trail (docs/audit.md): its state never fails MCP, but a missing or old schema loses every row.
    if (healthJson.audit === 'missing' || healthJson.audit === 'behind') {
      report.fail(
        `${origin}/health: the audit trail's database is ${healthJson.audit === 'missing' ? 'missing its tables' : 'behind the code'}, so no event is kept`,
        'run `npx wrangler d1 migrations apply AUDIT_DB --remote`',
      );
    } else if (healthJson.audit === 'off') {
      report.note(`${origin}/health: the audit trail is off (no AUDIT_DB binding)`);
    }
  } else if (health.response.status === 503 && Array.isArray(healthJson?.problems)) {
    report.fail(
      `${origin}/health reports a problem with ${healthJson.problems.join(', ')}`,
      'fix them in .prod.vars (`npm run doctor -- --env-file .prod.vars` says how), then `npx wrangler secret bulk .prod.vars`',
    );
  } else {
    report.fail(
      `${origin}/health answered HTTP ${health.response.status}, not this gateway's health check`,
      'is the gateway deployed on this host? (a route or another Worker may answer here)',
    );
  }

  const metadata = await getJson(`${origin}/.well-known/oauth-authorization-server`);
  /** @type {string[]} */
  let connectors = [];
  if ('error' in metadata) {
    report.fail(
      `${origin}/.well-known/oauth-authorization-server (RFC 8414): ${metadata.error}`,
      'MCP clients cannot find the login without it: deploy the gateway on this host',
    );
  } else {
    const m = metadata.json;
    const wrong = [
      m.issuer !== origin && 'issuer',
      m.authorization_endpoint !== `${origin}/authorize` && 'authorization_endpoint',
      m.token_endpoint !== `${origin}/token` && 'token_endpoint',
      !(Array.isArray(m.code_challenge_methods_supported) && m.code_challenge_methods_supported.includes('S256')) && 'code_challenge_methods_supported (S256)',
    ].filter(Boolean);
    if (wrong.length === 0) report.pass(`RFC 8414 metadata names ${origin} as issuer, its /authorize and /token, and PKCE S256`);
    else
      report.fail(
        `RFC 8414 metadata does not match ${origin}: ${wrong.join(', ')}`,
        'something in front of the Worker rewrites the host or paths: serve the Worker on this hostname directly',
      );
    if (Array.isArray(m.protected_resources)) connectors = m.protected_resources.filter((r) => typeof r === 'string');
  }
  if (connectors.length === 0) connectors = await connectorsOnLandingPage(origin);
  if (connectors.length === 0) report.fail(`no connector URL found at ${origin}/ or in the metadata`, 'check /health and the upstream settings');
  for (const connector of connectors) await checkChallenge(origin, connector, report);

  report.note(`the Access app's redirect URL for this host: ${origin}/callback (add it in ${ACCESS_APP}; one per hostname)`);
}

/** The connector URLs the landing page lists. @param {string} origin */
async function connectorsOnLandingPage(origin) {
  const page = await request(`${origin}/`, { headers: { Accept: 'text/html' } });
  if ('error' in page) return [];
  const text = await page.response.text();
  return [...text.matchAll(/<code>([^<]+\/mcp)<\/code>/g)].map((match) => (match[1] ?? '').replaceAll('&#x2F;', '/').replaceAll('&amp;', '&'));
}

/**
 * An unauthenticated MCP request must get a 401 whose challenge leads, via RFC 9728 metadata,
 * back to this gateway as the authorization server.
 * @param {string} origin @param {string} connector @param {Report} report
 */
async function checkChallenge(origin, connector, report) {
  const answer = await request(connector, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: rpc(1, 'initialize', { protocolVersion: workerUpstreams.LEGACY_PROTOCOL_VERSION, capabilities: {}, clientInfo: workerUpstreams.CLIENT_INFO }),
  });
  if ('error' in answer) {
    report.fail(`${connector}: ${answer.error}`, 'check the host, and that the gateway is deployed');
    return;
  }
  await answer.response.body?.cancel();
  const challenge = answer.response.headers.get('WWW-Authenticate') ?? '';
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
  if (answer.response.status !== 401 || !/^Bearer\b/i.test(challenge) || !metadataUrl) {
    report.fail(
      `${connector} answered HTTP ${answer.response.status} without a Bearer challenge naming resource_metadata`,
      'clients cannot start a login there: is the Worker behind a self-hosted Access app or another proxy? Access must be the sign-in provider, not a gate',
    );
    return;
  }
  const metadata = await getJson(metadataUrl);
  if ('error' in metadata) {
    report.fail(`${connector}: its RFC 9728 metadata ${printable(metadataUrl)}: ${metadata.error}`, 'serve the Worker on this hostname directly');
    return;
  }
  const servers = metadata.json.authorization_servers;
  if (metadata.json.resource === connector && Array.isArray(servers) && servers.includes(origin)) {
    report.pass(`${connector} answers 401 with a challenge whose RFC 9728 metadata names it and ${origin}`);
  } else {
    report.fail(
      `${connector}: RFC 9728 metadata names resource ${String(metadata.json.resource)} and authorization servers ${JSON.stringify(servers)}`,
      'something in front of the Worker rewrites the host: serve it on this hostname directly',
    );
  }
}

/** @param {number} id @param {string} method @param {object} params */
function rpc(id, method, params) {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}

/**
 * @param {string} url @param {RequestInit} [init] @param {number} [timeoutMs]
 * @returns {Promise<{ response: Response } | { error: string }>}
 */
async function request(url, init = {}, timeoutMs = TIMEOUT_MS) {
  try {
    return { response: await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) }) };
  } catch (error) {
    return { error: describeFetchError(error, timeoutMs) };
  }
}

/** @param {unknown} error @param {number} timeoutMs */
function describeFetchError(error, timeoutMs) {
  const err = /** @type {{ name?: string, cause?: { code?: string, message?: string } }} */ (error);
  if (err.name === 'TimeoutError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const code = err.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens there)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code && /CERT|SSL|TLS/.test(code)) return `TLS certificate problem (${code})`;
  return code ?? err.cause?.message ?? 'request failed';
}

/**
 * GET a JSON document; an error names the status or the content.
 * @param {string} url @returns {Promise<{ json: Record<string, any> } | { error: string }>}
 */
async function getJson(url) {
  const answer = await request(url, { headers: { Accept: 'application/json' } });
  if ('error' in answer) return answer;
  if (answer.response.status !== 200) {
    await answer.response.body?.cancel();
    return { error: `HTTP ${answer.response.status}` };
  }
  const json = await readJson(answer.response);
  return json ? { json } : { error: `not a JSON object (${answer.response.headers.get('Content-Type') ?? 'no content type'})` };
}

/** @param {Response} response @returns {Promise<Record<string, any> | undefined>} */
async function readJson(response) {
  try {
    const json = JSON.parse(await response.text());
    return json && typeof json === 'object' && !Array.isArray(json) ? json : undefined;
  } catch {
    return undefined;
  }
}

/** Both absolute and equal once normalized. @param {string} a @param {string} b */
function sameUrl(a, b) {
  return URL.canParse(a) && URL.canParse(b) && new URL(a).href === new URL(b).href;
}

/** A URL without its query or fragment, which may carry a key. @param {string} url */
export function printable(url) {
  if (!URL.canParse(url)) return '(not a URL)';
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}
