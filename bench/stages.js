// @ts-check
/**
 * Bench-only: the gateway's per-request stages run one at a time inside workerd, `n` times in one
 * request, so proxy-latency.mjs can tell where the time goes: per-op cost = (time with n - time
 * with none) / n, both timed by the client over the same loopback. Served by kv-counting-worker.js
 * at `/__bench/stage?name=<stage>&n=<count>`; never deployed.
 */

import { configFor } from '../src/config';
import worker from '../src/index';
import { gatewayFor } from '../src/oauth';
import {
  bindSessionId,
  clientResponseHeaders,
  forwardSessionId,
  logProxyRequest,
  proxyMcpRequest,
  readRequestBody,
  upstreamRequestHeaders,
} from '../src/proxy';
import { forwardToUpstream, upstreamCredential } from '../src/upstreams';

const RPC = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
const UPSTREAM_ANSWER = new Headers({
  'Content-Type': 'application/json',
  'Mcp-Session-Id': 'bench-session',
  'Mcp-Protocol-Version': '2025-11-25',
  'Cache-Control': 'no-store',
  'Set-Cookie': 'upstream_session=x',
});

const SAMPLE_ENTRY = {
  upstream: 'mcp',
  email: 'bench@example.com',
  clientId: 'bench-client',
  method: 'POST',
  path: '/mcp',
  rpcMethod: 'ping',
  status: 200,
  upstreamStatus: 200,
  latencyMs: 1,
  outcome: 'ok',
};
const SAMPLE_LINE = JSON.stringify({ event: 'mcp_proxy', time: new Date(0).toISOString(), ...SAMPLE_ENTRY });

/**
 * @param {Request} request carries the bearer token of a signed-in bench client
 * @param {any} env the (KV-counting) environment the gateway itself gets
 * @param {ExecutionContext} ctx
 */
export async function runStage(request, env, ctx) {
  const url = new URL(request.url);
  const name = url.searchParams.get('name') ?? 'none';
  const n = Number(url.searchParams.get('n') ?? 1);
  const config = configFor(env);
  if (!('upstreams' in config)) return new Response('misconfigured', { status: 500 });
  const gateway = gatewayFor(url.origin, config);
  const upstream = /** @type {import('../src/config').UpstreamConfig} */ (config.upstreams[0]);
  const resource = `${url.origin}${upstream.path}`;
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.get('Authorization') ?? '')?.[1] ?? '';
  const target = new URL('json/mcp', upstream.url);
  const rpcRequest = () =>
    new Request(url, { method: 'POST', body: RPC, headers: { 'Content-Type': 'application/json', 'Content-Length': String(RPC.length) } });

  // `proxy-quiet`: the proxy with printing switched off, to tell the line's cost from the rest.
  const print = console.log;
  if (name === 'proxy-quiet') console.log = () => {};
  try {
    await runStageLoop();
  } catch (error) {
    if (error instanceof UnknownStage) return new Response('unknown stage', { status: 404 });
    throw error;
  } finally {
    console.log = print;
  }
  return new Response(String(n));

  async function runStageLoop() {
    for (let i = 0; i < n; i++) {
      switch (name) {
        case 'none':
          break;
        case 'config':
          // What every request does before routing: the memoized configuration and origin's roles.
          gatewayFor(url.origin, /** @type {any} */ (configFor(env)));
          break;
        case 'token':
          // The library's own check: one KV read, unwrap the key, decrypt the props.
          if (!(await gateway.authorizationServer.validateToken(resource, token, env))) throw new Error('token refused');
          break;
        case 'token-cached': {
          // What the resource server's hook does (src/oauth/token-cache.ts), cached after the first call.
          const validate = /** @type {any} */ (gateway).validateToken;
          if (!validate) throw new UnknownStage();
          if (!(await validate(env)(resource, token))) throw new Error('token refused');
          break;
        }
        case 'request':
          rpcRequest();
          break;
        case 'body':
          await readRequestBody(rpcRequest());
          break;
        case 'headers': {
          const credential = await upstreamCredential(upstream, 'bench@example.com', undefined);
          if (!credential) throw new Error('no credential');
          upstreamRequestHeaders(request.headers, upstream, credential.header);
          clientResponseHeaders(UPSTREAM_ANSWER, null);
          break;
        }
        case 'session': {
          // Issue #16: the session id bound to the person, made on the way out, checked on the way in.
          const owner = { config, upstream, identity: { email: 'bench@example.com' } };
          const answer = new Headers(UPSTREAM_ANSWER);
          await bindSessionId(answer, owner);
          if (!(await forwardSessionId(answer, new Headers(), owner))) throw new Error('session handle refused');
          break;
        }
        case 'log-build':
          // The line's text alone, as log.ts builds it, without printing it.
          if (JSON.stringify({ event: 'mcp_proxy', time: new Date().toISOString(), ...SAMPLE_ENTRY }).length === 0) throw new Error();
          break;
        case 'log-print':
          // Printing a ready line of the same length.
          console.log(SAMPLE_LINE);
          break;
        case 'bare': {
          // The bare Worker's whole work inside the isolate: copy the headers, swap one, fetch.
          const headers = new Headers(request.headers);
          headers.set('Authorization', 'Bearer bench');
          const response = await fetch(target, { method: 'POST', headers, body: RPC });
          await response.arrayBuffer();
          break;
        }
        case 'gateway': {
          // The gateway's whole work inside the isolate, as for a client's ping to /mcp.
          const headers = new Headers(request.headers);
          headers.set('Content-Type', 'application/json');
          headers.set('Accept', 'application/json, text/event-stream');
          const response = await worker.fetch(/** @type {any} */ (new Request(`${url.origin}/mcp/json/mcp`, { method: 'POST', headers, body: RPC })), env, ctx);
          const text = await response.text();
          if (response.status !== 200) throw new Error(`gateway answered ${response.status}: ${text.slice(0, 100)}`);
          break;
        }
        case 'bare-log': {
          // The bare Worker plus one printed line, as the gateway prints.
          const headers = new Headers(request.headers);
          headers.set('Authorization', 'Bearer bench');
          const response = await fetch(target, { method: 'POST', headers, body: RPC });
          await response.arrayBuffer();
          console.log(SAMPLE_LINE);
          break;
        }
        case 'proxy-quiet':
        case 'proxy': {
          // src/proxy/handler.ts alone: no OAuth library, no allowlist.
          const response = await proxyMcpRequest(
            new Request(`${url.origin}/mcp/json/mcp`, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json', 'Content-Length': String(RPC.length) },
              body: RPC,
            }),
            { config, upstream, identity: { email: 'bench@example.com', sub: 'bench' }, clientId: 'bench' },
            ctx,
          );
          await response.text();
          break;
        }
        case 'resource': {
          // The resource server's fetch (token check, then src/mcp.ts and the proxy), without index.ts.
          const headers = new Headers(request.headers);
          headers.set('Content-Type', 'application/json');
          const server = gateway.resourceServers.get(upstream.name);
          if (!server) throw new Error('no resource server');
          const response = await server.fetch(
            new Request(`${url.origin}/mcp/json/mcp`, { method: 'POST', headers, body: RPC }),
            env,
            /** @type {any} */ ({ ...ctx, waitUntil: ctx.waitUntil.bind(ctx), passThroughOnException: () => {} }),
          );
          await response.text();
          break;
        }
        case 'log':
          logProxyRequest({
            upstream: upstream.name,
            email: 'bench@example.com',
            clientId: 'bench-client',
            method: 'POST',
            path: '/mcp',
            rpcMethod: 'ping',
            status: 200,
            upstreamStatus: 200,
            latencyMs: 1,
            outcome: 'ok',
          });
          break;
        case 'fetch': {
          const response = await fetch(target, { method: 'POST', body: RPC, headers: { 'Content-Type': 'application/json' } });
          await response.arrayBuffer();
          break;
        }
        case 'forward': {
          const result = await forwardToUpstream(target, {
            method: 'POST',
            headers: new Headers({ 'Content-Type': 'application/json' }),
            body: new TextEncoder().encode(RPC).buffer,
            signal: request.signal,
            timeoutMs: 30_000,
          });
          if (result.outcome !== 'response') throw new Error(result.outcome);
          await result.response.arrayBuffer();
          break;
        }
        default:
          throw new UnknownStage();
      }
    }
    // The lines the last requests left for after their response are part of their cost.
    await scheduler.wait(1);
  }
}

class UnknownStage extends Error {}
