import { env } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseExactJson, rewriteJsonRpcEvents } from '../src/lib';
import { rewriteListAnswers } from '../src/policy';
import { CLIENT_HEADERS, callProxy, captureLogs, expectJsonRpcError, openSession, proxyConfig, received, rpcPost, tag } from './fixtures/proxy';

/**
 * Issue #16, items 1 and 2: the gateway forwards exactly the message it judged (one parse, its own
 * UTF-8 serialization, nothing it could read differently from the upstream), and a rate limit
 * counts every request the upstream will execute. In front of the real test upstream's `/json/`
 * and `/tools/` servers (upstream-server.mjs), which record what crossed the wire.
 */

type Message = { jsonrpc: '2.0'; id?: unknown; result?: unknown; error?: { code: number; message: string; data?: { retryAfter: number } } };

const call = (id: unknown, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});
const DENY = { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) };

/** A POST of these exact bytes, as a client could send them. */
function rawPost(body: string | Uint8Array, contentType = 'application/json', more: Record<string, string> = {}): RequestInit {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  return {
    method: 'POST',
    body: bytes,
    headers: {
      ...CLIENT_HEADERS,
      'Content-Type': contentType,
      Accept: 'application/json, text/event-stream',
      'Content-Length': String(bytes.byteLength),
      ...more,
    },
  };
}

/** A POST whose body has no Content-Length (HTTP/2, chunked), in pieces. */
function streamedPost(pieces: string[], contentType = 'application/json'): RequestInit {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      controller.close();
    },
  });
  return { method: 'POST', body, headers: { ...CLIENT_HEADERS, 'Content-Type': contentType }, duplex: 'half' } as RequestInit;
}

/** The configurations every refusal must hold under: no policy, a tool policy, a rate limit only. */
function configs(path: string) {
  return [
    ['without a policy', proxyConfig(path)],
    ['under a tool policy', proxyConfig(path, DENY)],
    ['under a rate limit only', proxyConfig(path, { UPSTREAM_RATE_LIMIT: JSON.stringify({ requests: 1000, period: 60 }), RATE_LIMITER: env.RATE_LIMITER })],
  ] as const;
}

const countOf = (text: string, part: string) => text.split(part).length - 1;

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('issue #16: JSON that is not UTF-8 is refused, policy or not', () => {
  // "tools/call" in UTF-7 is "tools+AC8-call": read as UTF-8, the gateway would see no tools/call.
  const utf7 = '{"jsonrpc":"2.0","id":1,"method":"tools+AC8-call","params":{"name":"delete+AF8-repo","arguments":{}}}';

  it.each(configs('/tools/json/mcp'))('answers a UTF-7 body (charset=utf-7) with 400 -32600 %s, and the upstream receives nothing', async (_, config) => {
    const t = tag();
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rawPost(utf7, 'application/json; charset=utf-7') });
    await expectJsonRpcError(response, 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it.each([
    ['charset=utf-16', 'application/json; charset=utf-16'],
    ['charset="UTF-16LE", quoted', 'application/json;charset="UTF-16LE"'],
    ['charset=iso-8859-1', 'Application/JSON ; Charset=ISO-8859-1'],
    ['a second charset after utf-8', 'application/json; charset=utf-8; charset=utf-7'],
  ])('refuses %s with 400 -32600 and sends nothing upstream', async (_, contentType) => {
    const t = tag();
    const response = await callProxy({
      config: proxyConfig('/json/mcp', DENY),
      path: `/mcp?t=${t}`,
      init: rawPost(JSON.stringify(call(1, 'get_issue')), contentType),
    });
    await expectJsonRpcError(response, 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it('refuses a declared charset even on a body too large to read, when there is no policy', async () => {
    const t = tag();
    const big = JSON.stringify(call(1, 'get_issue', { blob: 'y'.repeat(1024 * 1024 + 1) }));
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rawPost(big, 'application/json; charset=utf-7') });
    await expectJsonRpcError(response, 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it.each(configs('/tools/json/mcp'))('refuses a UTF-16LE body with its byte order mark, sent as plain application/json, %s', async (_, config) => {
    const t = tag();
    const text = JSON.stringify(call(1, 'delete_repo'));
    const bytes = new Uint8Array(2 + text.length * 2);
    bytes.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) bytes[2 + i * 2] = text.charCodeAt(i);
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rawPost(bytes) });
    expect(response.status).toBe(400);
    expect((await response.json<Message>()).error?.code).toBeLessThanOrEqual(-32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it.each(configs('/tools/json/mcp'))('refuses a body that is not valid UTF-8 with 400 -32600 %s', async (_, config) => {
    const t = tag();
    const text = new TextEncoder().encode(JSON.stringify(call(1, 'get_issue', { x: '__' })));
    const at = new TextDecoder().decode(text).indexOf('__');
    text.set([0xc0, 0xaf], at); // an overlong "/": never valid UTF-8
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rawPost(text) });
    await expectJsonRpcError(response, 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it('accepts charset=utf-8 in any case, quoted or not, and sends a plain application/json upstream', async () => {
    for (const contentType of ['application/json; charset=utf-8', 'APPLICATION/JSON;CHARSET="UTF-8"', 'application/json ; charset=utf8']) {
      const t = tag();
      const response = await callProxy({
        config: proxyConfig('/json/mcp'),
        path: `/mcp?t=${t}`,
        init: rawPost(JSON.stringify(call(1, 'get_issue')), contentType),
      });
      expect(response.status, contentType).toBe(200);
      expect((await received(t))[0]?.headers['content-type']).toBe('application/json');
    }
  });
});

describe('issue #16: the upstream receives the message the gateway judged, as the gateway wrote it', () => {
  it('under a deny policy, a duplicated "name" reaches the upstream once, as the value the gateway judged', async () => {
    const config = proxyConfig('/tools/json/mcp', DENY);
    // JSON.parse keeps the last of duplicated keys: here the allowed tool, so it goes upstream alone.
    const t = tag();
    const allowedLast = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo","name":"get_issue","arguments":{}}}';
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rawPost(allowedLast) });
    expect(response.status).toBe(200);
    const [got] = await received(t);
    expect(countOf(got?.body ?? '', '"name"')).toBe(1);
    expect(JSON.parse(got?.body ?? '{}').params.name).toBe('get_issue');
    expect(got?.body).not.toContain('delete_repo');

    // Here the denied one: refused, and nothing goes upstream.
    const t2 = tag();
    const deniedLast = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_issue","name":"delete_repo","arguments":{}}}';
    const refused = await callProxy({ config, path: `/mcp?t=${t2}`, init: rawPost(deniedLast) });
    expect((await refused.json<Message>()).error?.code).toBe(-32602);
    expect(await received(t2, 0)).toEqual([]);
  });

  it('a duplicated "method" reaches the upstream once, as the method the gateway judged', async () => {
    const t = tag();
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"delete_repo"}}';
    const response = await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${t}`, init: rawPost(body) });
    expect(response.status).toBe(200);
    const [got] = await received(t);
    expect(countOf(got?.body ?? '', '"method"')).toBe(1);
    expect(JSON.parse(got?.body ?? '{}').method).toBe('ping');
  });

  it.each([
    ['"Method" beside "method"', '{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"delete_repo"}}'],
    ['"NAME" beside "name"', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","NAME":"delete_repo"}}'],
    ['"Params" beside "params"', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue"},"Params":{"name":"delete_repo"}}'],
    ['"ID" beside "id"', '{"jsonrpc":"2.0","id":1,"ID":{},"method":"tools/list"}'],
    [
      '"paramſ" (a long s, which Unicode folds to s) beside "params"',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue"},"paramſ":{"name":"delete_repo"}}',
    ],
  ])('refuses %s (a case-insensitive upstream such as Go encoding/json reads the last) with 400 -32600', async (_, body) => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${t}`, init: rawPost(body) });
    await expectJsonRpcError(response, 400, -32600, 1);
    expect(await received(t, 0)).toEqual([]);
  });

  it("sends Content-Type: application/json and the gateway's own serialization, not the client's bytes", async () => {
    const t = tag();
    const body = '{ "jsonrpc" : "2.0",\n  "id" : "a\\u0062c", "method":"tools/call", "params":{"name":"get\\u005fissue","arguments":{"q":"\\u00e9"}} }';
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rawPost(body, 'application/json; charset=UTF-8; profile="x"') });
    const [got] = await received(t);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.body).toBe(JSON.stringify(JSON.parse(body)));
    expect(got?.body).toBe('{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"get_issue","arguments":{"q":"é"}}}');
  });

  it('sends the same serialization under a tool policy', async () => {
    const t = tag();
    const body = '{"jsonrpc":"2.0",  "id":7,"method":"tools/call","params":{"name":"get_issue","name":"get_issue","arguments":{}}}';
    await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${t}`, init: rawPost(body, 'application/json; charset=utf-8') });
    const [got] = await received(t);
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.body).toBe('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_issue","arguments":{}}}');
  });

  it('keeps every number exactly as the client wrote it: a big-integer id, tool arguments, exponents', async () => {
    const t = tag();
    const body =
      '{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"get_issue","arguments":{"n":1.0,"big":9007199254740993,"tiny":1e-400,"huge":1E400,"neg":-0,"pi":3.14159265358979323846264338327950288}}}';
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rawPost(body) });
    expect((await received(t))[0]?.body).toBe(body);
  });

  it("echoes a big-integer id unchanged in the gateway's own answers", async () => {
    const t = tag();
    const body = '{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"delete_repo","arguments":{}}}';
    const response = await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${t}`, init: rawPost(body) });
    const text = await response.text();
    expect(text).toContain('"id":12345678901234567890');
    expect(JSON.parse(text).error.code).toBe(-32602);
    expect(await received(t, 0)).toEqual([]);
  });

  it('reads a JSON body of unknown length too, and forwards its serialization', async () => {
    const t = tag();
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: streamedPost(['{"jsonrpc": "2.0", "id": 1,', ' "method": "ping"}']) });
    const [got] = await received(t);
    expect(got?.body).toBe('{"jsonrpc":"2.0","id":1,"method":"ping"}');
    expect(got?.headers['content-type']).toBe('application/json');
  });

  it('streams a body of unknown length over 1 MiB through unchanged when there is no policy', async () => {
    const t = tag();
    const head = '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"blob":"';
    const pieces = [head, ...Array.from({ length: 20 }, () => 'z'.repeat(64 * 1024)), '"}}'];
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: streamedPost(pieces) });
    expect(response.status).toBe(200);
    expect((await received(t))[0]?.body).toBe(pieces.join(''));
  });

  it.each(configs('/tools/json/mcp'))('answers 400 -32600, not a 500, to a JSON body that breaks off %s', async (_, config) => {
    const t = tag();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"jsonrpc":"2.0","id":1,'));
        controller.error(new Error('connection reset by the client'));
      },
    });
    const init = { method: 'POST', body, headers: { ...CLIENT_HEADERS, 'Content-Type': 'application/json' }, duplex: 'half' } as RequestInit;
    await expectJsonRpcError(await callProxy({ config, path: `/mcp?t=${t}`, init }), 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it.each(configs('/tools/json/mcp'))('answers a body that is not JSON with 400 -32700 %s, and sends nothing upstream', async (_, config) => {
    const t = tag();
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rawPost('{"jsonrpc":"2.0","id":1,"method":"tools/call",') });
    await expectJsonRpcError(response, 400, -32700);
    expect(await received(t, 0)).toEqual([]);
  });

  it('refuses, under a rate limit alone, a body it cannot read, and passes it without a limit or policy', async () => {
    const limited = proxyConfig('/json/mcp', { UPSTREAM_RATE_LIMIT: JSON.stringify({ requests: 1000, period: 60 }), RATE_LIMITER: env.RATE_LIMITER });
    const t = tag();
    const body = JSON.stringify(call(1, 'get_issue'));
    await expectJsonRpcError(await callProxy({ config: limited, path: `/mcp?t=${t}`, init: rawPost(body, 'text/plain') }), 400, -32600);
    expect(await received(t, 0)).toEqual([]);
    const open = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rawPost(body, 'text/plain') });
    expect(open.status).toBe(200);
    expect((await received(t))[0]?.body).toBe(body);
  });
});

describe('issue #16: a message the gateway cannot match to what it judged is refused', () => {
  it.each([
    ['null', null],
    ['an object', {}],
    ['an array', [1]],
    ['true', true],
  ])('answers a tools/list whose id is %s with 400 -32600, policy or not, and sends nothing upstream', async (_, id) => {
    for (const [, config] of configs('/tools/json/mcp')) {
      const t = tag();
      const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost({ jsonrpc: '2.0', id, method: 'tools/list' }) });
      await expectJsonRpcError(response, 400, -32600);
      expect(await received(t, 0)).toEqual([]);
    }
  });

  it('refuses a batch that uses one id twice', async () => {
    const t = tag();
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', id: 1, method: 'ping' },
    ];
    await expectJsonRpcError(await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${t}`, init: rpcPost(batch) }), 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it.each([
    ['an empty batch', [], null],
    ['a number', 42, null],
    ['a batch holding a string', ['tools/call'], null],
    ['an object that is neither request, notification nor response', { jsonrpc: '2.0', id: 1 }, null],
    ['a method that is not a string', { jsonrpc: '2.0', id: 1, method: ['tools/call'] }, null],
    ['params that are not an object or array', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: 'delete_repo' }, 1],
  ])('refuses %s with 400 -32600', async (_, message, id) => {
    const t = tag();
    await expectJsonRpcError(await callProxy({ config: proxyConfig('/tools/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(message) }), 400, -32600, id);
    expect(await received(t, 0)).toEqual([]);
  });

  it('refuses a batch of 101 messages and forwards one of 100', async () => {
    const pings = (n: number) => Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i + 1, method: 'ping' }));
    const t = tag();
    await expectJsonRpcError(await callProxy({ config: proxyConfig('/tools/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(pings(101)) }), 400, -32600);
    expect(await received(t, 0)).toEqual([]);
    const ok = await callProxy({ config: proxyConfig('/tools/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(pings(100)) });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toHaveLength(100);
  });

  it("passes the client's answers to the server's requests, and notifications, as they are", async () => {
    const t = tag();
    const batch = [
      { jsonrpc: '2.0', id: 'srv-1', result: { content: [] } },
      { jsonrpc: '2.0', id: 'srv-2', error: { code: -32601, message: 'no' } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ];
    const response = await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${t}`, init: rpcPost(batch) });
    expect(response.status).toBe(202);
    expect(JSON.parse((await received(t))[0]?.body ?? '')).toEqual(batch);
  });
});

describe('issue #16: under a policy, GET and DELETE carry no body upstream', () => {
  it.each([
    ['a tool policy', DENY],
    ['a rate limit', { UPSTREAM_RATE_LIMIT: JSON.stringify({ requests: 1000, period: 60 }), RATE_LIMITER: env.RATE_LIMITER }],
  ])('sends a DELETE with a body upstream without it, under %s', async (_, more) => {
    const config = proxyConfig('/json/mcp', more);
    // The session is the person's own (issue #16): a raw id would be refused as unknown.
    const { t, handle } = await openSession(config);
    const body = JSON.stringify(call(1, 'delete_repo'));
    const response = await callProxy({
      config,
      path: `/mcp?t=${t}`,
      init: { method: 'DELETE', body, headers: { ...CLIENT_HEADERS, 'Content-Type': 'application/json', 'Mcp-Session-Id': handle } },
    });
    expect(response.status).toBe(204);
    const got = (await received(t)).at(-1);
    expect(got?.method).toBe('DELETE');
    expect(got?.body).toBe('');
    expect(got?.headers['content-length'] ?? '0').toBe('0');
  });
});

describe('issue #16: a rate limit counts every request of a batch', () => {
  const limited = (requests: number, path = '/tools/json/mcp', more: Record<string, unknown> = {}) =>
    proxyConfig(path, { UPSTREAM_RATE_LIMIT: JSON.stringify({ requests, period: 60 }), RATE_LIMITER: env.RATE_LIMITER, ...more });

  it('refuses a batch of 50 tools/call whole, with 429 and Retry-After, against a limit of one request', async () => {
    const t = tag();
    const me = `batcher-${tag()}@example.com`;
    const batch = Array.from({ length: 50 }, (_, i) => call(i + 1, 'get_issue'));
    const response = await callProxy({ config: limited(1), email: me, path: `/mcp?t=${t}`, init: rpcPost(batch) });
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('Retry-After'))).toBeGreaterThan(0);
    const body = await response.json<Message>();
    expect(body.error?.code).toBe(-32006);
    expect(body.error?.data?.retryAfter).toBe(Number(response.headers.get('Retry-After')));
    expect(await received(t, 0)).toEqual([]);
    // Nothing of the refused batch was counted: a single request still fits.
    expect((await callProxy({ config: limited(1), email: me, path: `/mcp?t=${t}`, init: rpcPost(call(51, 'get_issue')) })).status).toBe(200);
  });

  it('charges each request of a batch, and refuses a batch that would cross the limit whole', async () => {
    const t = tag();
    const me = `batcher-${tag()}@example.com`;
    const config = limited(3, '/tools/json/mcp', DENY);
    const two = (a: number) => [call(a, 'get_issue'), { jsonrpc: '2.0', method: 'notifications/progress', params: {} }, call(a + 1, 'delete_repo')];
    // Two requests (the refused call counts too: it was asked for) and a notification: 2 of 3.
    expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: rpcPost(two(1)) })).status).toBe(200);
    const crossing = await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: rpcPost(two(3)) });
    expect(crossing.status).toBe(429);
    expect((await crossing.json<Message>()).error?.code).toBe(-32006);
    // The third request still fits; the fourth does not.
    expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: rpcPost(call(5, 'get_issue')) })).status).toBe(200);
    expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: rpcPost(call(6, 'get_issue')) })).status).toBe(429);
    const got = await received(t, 2);
    expect(got.map((r) => JSON.parse(r.body)).map((m: Message | Message[]) => (Array.isArray(m) ? m.length : m.id))).toEqual([2, 5]);
  });

  it('charges a GET stream and a body of notifications one request each', async () => {
    const me = `streamer-${tag()}@example.com`;
    const config = limited(2, '/json/mcp');
    const t = tag();
    const notification = rpcPost({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: notification })).status).toBe(200);
    const get = await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: { method: 'GET', headers: CLIENT_HEADERS } });
    expect(get.status).toBe(200);
    await get.body?.cancel();
    expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: notification })).status).toBe(429);
  });
});

describe('issue #16: the log line names every method and tool', () => {
  const logged = (logs: ReturnType<typeof captureLogs>) => logs.parsed().filter((l) => l.event === 'mcp_proxy');

  it('names every tool of a batch, refused ones too, and how many requests it held', async () => {
    const logs = captureLogs();
    const batch = [call(1, 'get_issue'), call(2, 'delete_repo'), { jsonrpc: '2.0', id: 3, method: 'tools/list' }, call(4, 'search_code'), call(5, 'get_issue')];
    await callProxy({ config: proxyConfig('/tools/json/mcp', DENY), path: `/mcp?t=${tag()}`, init: rpcPost(batch) });
    expect(logged(logs)).toEqual([
      expect.objectContaining({ rpcMethod: 'tools/call,tools/list', tool: 'get_issue,delete_repo,search_code', requests: 5, outcome: 'tool_refused' }),
    ]);
  });

  it('names the tools of a batch without a policy, and an unprintable name only as placeholders', async () => {
    const logs = captureLogs();
    const batch = [call(1, 'get_issue'), call(2, 'evil\n{"outcome":"ok"}'), call(3, 'search_code')];
    await callProxy({ config: proxyConfig('/tools/json/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(batch) });
    const [line] = logged(logs);
    expect(line).toMatchObject({ rpcMethod: 'tools/call', requests: 3, outcome: 'ok' });
    const tools = String(line?.tool).split(',');
    expect(tools[0]).toBe('get_issue');
    expect(tools[2]).toBe('search_code');
    expect(tools[1]).toMatch(/^[\w./:@?-]+$/);
    expect(tools[1]).not.toContain('"');
  });

  it('names the method and tool of a message the gateway refused as malformed', async () => {
    const logs = captureLogs();
    await callProxy({
      config: proxyConfig('/tools/json/mcp'),
      path: `/mcp?t=${tag()}`,
      init: rpcPost({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'delete_repo' } }),
    });
    expect(logged(logs)).toEqual([expect.objectContaining({ rpcMethod: 'tools/call', tool: 'delete_repo', status: 400, outcome: 'invalid_message' })]);
  });

  it('says the method is unknown for a body streamed through unread', async () => {
    const logs = captureLogs();
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${tag()}`, init: rawPost(JSON.stringify(call(1, 'get_issue')), 'text/plain') });
    const [line] = logged(logs);
    expect(line?.rpcMethod).toBeUndefined();
    expect(line?.tool).toBeUndefined();
  });
});

describe('issue #16: numbers survive the gateway serialization', () => {
  /** A deterministic stream of number literals of every JSON shape: long, signed, fractions, exponents, leading and trailing zeros. */
  function* literals(count: number): Generator<string> {
    let seed = 16;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const digits = (n: number) => Array.from({ length: n }, () => String(next(10))).join('');
    for (let i = 0; i < count; i++) {
      const sign = next(3) === 0 ? '-' : '';
      const int = next(4) === 0 ? '0' : `${1 + next(9)}${digits(next(24))}`;
      const fraction = next(2) === 0 ? '' : `.${'0'.repeat(next(3) === 0 ? next(9) : 0)}${digits(1 + next(20))}`;
      const exponent = next(5) === 0 ? `${next(2) ? 'e' : 'E'}${['', '+', '-'][next(3)]}${1 + next(400)}` : '';
      yield `${sign}${int}${fraction}${exponent}`;
    }
  }

  /** The edges: just past 2^53, 16 and 17 significant digits, the exponent switch-overs of Number#toString, -0, subnormals. */
  const EDGES = [
    '9007199254740993',
    '9999999999999999',
    '1234567890.123456',
    '0.1000000000000000055511151231257827',
    '12345678901234567890',
    '100000000000000000000',
    '1000000000000000000000',
    '0.000001',
    '0.0000001',
    '-0',
    '-0.0',
    '1.0',
    '1.50',
    '5e-324',
    '2.2250738585072014e-308',
    '1.7976931348623157e308',
  ];

  it('writes back every number literal exactly as it was written, in the runtime the gateway runs in', () => {
    for (const literal of [...EDGES, ...literals(20_000)]) {
      const text = `{"a":[${literal}, ${literal}],"b":${literal}}`;
      expect(JSON.stringify(parseExactJson(text)), literal).toBe(text.replace(', ', ','));
    }
  });

  it('keeps the numbers of a tools/list answer the policy filtered out of an event stream', async () => {
    const rules = { allow: undefined, deny: [/^delete_.*$/], readOnly: false };
    const schema = '{"type":"object","properties":{"n":{"type":"integer","maximum":18446744073709551615,"multipleOf":1.0}}}';
    const event = `data: {"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"delete_x"},{"name":"get_x","inputSchema":${schema}}]}}\n\n`;
    const body = new Blob([event]).stream();
    const out = await new Response(rewriteJsonRpcEvents(body, (m) => rewriteListAnswers(rules, m, { ids: new Set(['n:9']) }))).text();
    expect(out).toBe(`data: {"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"get_x","inputSchema":${schema}}],"ttlMs":60000,"cacheScope":"private"}}\n\n`);
  });

  it('leaves a body of ordinary numbers to the plain parse, with the values JSON.parse gives', () => {
    const text = '{"id":7,"n":[0,-1,1.5,0.000001,123456789012345,-0.25,42.125]}';
    expect(parseExactJson(text)).toEqual(JSON.parse(text));
    expect(JSON.stringify(parseExactJson(text))).toBe(text);
  });
});
