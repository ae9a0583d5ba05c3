import { type Config, ConfigError, configFor } from './config';
import { html, htmlPage } from './lib/html';
import { MCP_PATH, providerFor } from './provider';

const PROTECTED_RESOURCE_ROOT = '/.well-known/oauth-protected-resource';
const reported = new WeakSet<ConfigError>();

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const url = new URL(request.url);
    const config = configFor(env);
    if (url.pathname === '/health') return health(config);
    if (config instanceof ConfigError) return misconfigured(config);

    let provider: ReturnType<typeof providerFor>;
    try {
      provider = providerFor(url.origin, config);
    } catch {
      // The library accepts only https origins, or http on loopback (wrangler dev).
      return htmlPage('Use https', html`<h1>Use https</h1><p>This gateway must be reached over https.</p>`, { status: 421 });
    }
    // The library stores its helpers on the env it is given, once; `env` is shared by every
    // request, so without a copy a second origin would get the first origin's helpers.
    const requestEnv = { ...env };
    if (url.pathname === PROTECTED_RESOURCE_ROOT) {
      // RFC 9728 clients also try the root document, which the library does not serve: it is
      // the one resource here, /mcp.
      return provider.fetch(new Request(`${url.origin}${PROTECTED_RESOURCE_ROOT}${MCP_PATH}`, request), requestEnv, ctx);
    }
    return provider.fetch(request, requestEnv, ctx);
  },
} satisfies ExportedHandler<Env>;

function health(config: Config | ConfigError): Response {
  const headers = { 'Cache-Control': 'no-store' };
  if (config instanceof ConfigError) {
    // Names only: a value could be a secret.
    return Response.json({ ok: false, problems: [...new Set(config.problems.map((p) => p.variable))] }, { status: 503, headers });
  }
  return Response.json({ ok: true }, { headers });
}

function misconfigured(error: ConfigError): Response {
  if (!reported.has(error)) {
    reported.add(error);
    console.error(JSON.stringify({ event: 'misconfigured', problems: error.problems }));
  }
  return htmlPage(
    'Gateway misconfigured',
    html`<h1>This gateway is misconfigured</h1><p>Its operator needs to fix its settings; the Worker's logs and <code>/health</code> say which.</p>`,
    { status: 500 },
  );
}
