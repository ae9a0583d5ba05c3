/**
 * Checks a parsed JSON-RPC body (one message or a batch) before anything of it goes upstream, and
 * sums up what the log and the rate limit need. The checks are those a correct MCP server makes
 * anyway; here they close the ways a message could mean one thing to the gateway and another to
 * the upstream: an id the policy cannot match answers to, and keys only a case-insensitive decoder
 * (Go's encoding/json, for one) would read as the ones the gateway judged.
 */
import type { AuditArguments } from '../config';
import { isRawJsonNumber } from '../lib';
import { argumentsForTrail } from './audit-arguments';
import type { JsonRpcId, ProxyErrorKind } from './jsonrpc-error';

/** The MCP TypeScript SDK's own cap (MAX_BATCH_SIZE); a batch beyond it is refused whole. */
export const MAX_BATCH_MESSAGES = 100;

/** What the log line and the rate limit know of a body. */
export interface MessageSummary {
  /** The request's id when the body is one request, for the proxy's own errors; else null. */
  id: JsonRpcId;
  /** Each distinct method, in order, comma-separated; undefined when there is none. */
  methods: string | undefined;
  /** Each distinct tool of a `tools/call`, in order, comma-separated; undefined when there is none. */
  tools: string | undefined;
  /** Each distinct resource URI of a `resources/read`, `resources/subscribe` or `resources/unsubscribe`, likewise. */
  resources: string | undefined;
  /** Each distinct prompt of a `prompts/get`, likewise. */
  prompts: string | undefined;
  /** What the trail keeps of the `tools/call` arguments under the upstream's `audit.arguments`; undefined: nothing. */
  arguments: string | undefined;
  /** Calls the upstream may execute: every message with a method, except `notifications/…` without an id. */
  calls: number;
  batch: boolean;
}

export type MessageCheck = { ok: true; summary: MessageSummary } | { ok: false; error: ProxyErrorKind; summary: MessageSummary };

/** Keys the gateway reads, or that an upstream reads in their place; compared case-folded. */
const ENVELOPE_KEYS = ['jsonrpc', 'id', 'method', 'params', 'result', 'error'];
const PARAMS_KEYS = ['name', 'uri', 'arguments'];
const FOLDED_ENVELOPE = new Map(ENVELOPE_KEYS.map((key) => [key, key]));
const FOLDED_PARAMS = new Map(PARAMS_KEYS.map((key) => [key, key]));

export interface CheckOptions {
  /** The upstream's `audit.arguments`: what the summary keeps of the calls' arguments. */
  auditArguments?: AuditArguments;
}

/** Checks `value`, a parsed body; never throws. */
export function checkJsonRpcBody(value: unknown, options: CheckOptions = {}): MessageCheck {
  const batch = Array.isArray(value);
  const messages: unknown[] = batch ? value : [value];
  const summary = summarize(messages.slice(0, MAX_BATCH_MESSAGES), batch, options.auditArguments ?? 'none');
  const refuse = (error: ProxyErrorKind): MessageCheck => ({ ok: false, error, summary });
  if (batch && messages.length === 0) return refuse('emptyBatch');
  if (messages.length > MAX_BATCH_MESSAGES) return refuse('batchTooLarge');

  const ids = new Set<string>();
  for (const message of messages) {
    const error = messageError(message);
    if (error) return refuse(error);
    const { id, method } = message as Record<string, unknown>;
    if (method === undefined || id === undefined) continue;
    // Two requests with one id: their answers could not be told apart, nor filtered right.
    const key = idKeyOf(id);
    if (ids.has(key)) return refuse('duplicateId');
    ids.add(key);
  }
  return { ok: true, summary };
}

function messageError(message: unknown): ProxyErrorKind | undefined {
  if (!isPlainObject(message)) return 'invalidMessage';
  if (hasFoldedTwin(message, FOLDED_ENVELOPE)) return 'ambiguousKey';
  const { id, method, params } = message;
  if (method !== undefined || 'method' in message) {
    if (typeof method !== 'string') return 'invalidMessage';
    // JSON-RPC 2.0 §4.2: params, when present, are structured.
    if (params !== undefined && !isPlainObject(params) && !Array.isArray(params)) return 'invalidMessage';
    if (isPlainObject(params) && hasFoldedTwin(params, FOLDED_PARAMS)) return 'ambiguousKey';
    // MCP: a request id is a string or a number, never null; absent makes a notification.
    if ('id' in message && !isId(id)) return 'invalidId';
    return undefined;
  }
  // A response to a server's request: the server's id, or null on an error about an unreadable request.
  if (!('result' in message) && !('error' in message)) return 'invalidMessage';
  if (!isId(id) && !(id === null && 'error' in message)) return 'invalidId';
  return undefined;
}

/** A string or finite number (one parsed exactly counts too). */
function isId(id: unknown): boolean {
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) || isRawJsonNumber(id);
}

/** 1 and "1" differ; 1 and 1.0 do not (an upstream reads them as one number). */
function idKeyOf(id: unknown): string {
  return typeof id === 'string' ? `s:${id}` : `n:${Number(isRawJsonNumber(id) ? id.rawJSON : id)}`;
}

/**
 * Whether an object holds a key that is not one of `keys` but folds to one (`Method`, `NAME`,
 * `paramſ`): upper then lower case folds ſ to s and K (Kelvin) to k, as Unicode case folding does.
 */
function hasFoldedTwin(object: Record<string, unknown>, keys: ReadonlyMap<string, string>): boolean {
  for (const key of Object.keys(object)) {
    if (keys.has(key)) continue;
    if (keys.has(key.toUpperCase().toLowerCase())) return true;
  }
  return false;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isRawJsonNumber(value);
}

function summarize(messages: unknown[], batch: boolean, auditArguments: AuditArguments): MessageSummary {
  const methods = new Set<string>();
  const tools = new Set<string>();
  const resources = new Set<string>();
  const prompts = new Set<string>();
  const callArguments: unknown[] = [];
  let calls = 0;
  for (const message of messages) {
    if (!isPlainObject(message) || message.method === undefined) continue;
    const method = printable(message.method, METHOD_CHARS);
    methods.add(method);
    if (message.id !== undefined || !method.startsWith('notifications/')) calls++;
    const params = isPlainObject(message.params) ? message.params : undefined;
    if (message.method === 'tools/call') {
      tools.add(nameIn(params, 'name'));
      callArguments.push(params?.arguments);
    } else if (RESOURCE_METHODS.has(message.method as string)) resources.add(nameIn(params, 'uri'));
    else if (message.method === 'prompts/get') prompts.add(nameIn(params, 'name'));
  }
  const single = messages[0];
  const id = !batch && isPlainObject(single) && typeof single.method === 'string' && isId(single.id) ? (single.id as JsonRpcId) : null;
  const list = (names: Set<string>) => (names.size > 0 ? [...names].join(',') : undefined);
  return {
    id,
    methods: list(methods),
    tools: list(tools),
    resources: list(resources),
    prompts: list(prompts),
    arguments: argumentsForTrail(callArguments, batch, auditArguments),
    calls,
    batch,
  };
}

/** What a tool, resource or prompt message names, as the log prints it; `?` without params. */
function nameIn(params: Record<string, unknown> | undefined, key: 'name' | 'uri'): string {
  return params ? printable(params[key], TOOL_CHARS) : '?';
}

const RESOURCE_METHODS = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe']);
const METHOD_CHARS = /[^\w./:-]/g;
const TOOL_CHARS = /[^\w./:@-]/g;

/**
 * A client-chosen name as the log may print it: at most 100 characters, each one outside the
 * names' usual set replaced by `?`, so it can neither forge log content nor pass for another name.
 */
function printable(value: unknown, outside: RegExp): string {
  if (typeof value !== 'string' || value === '') return '?';
  return value.slice(0, 100).replace(outside, '?');
}
