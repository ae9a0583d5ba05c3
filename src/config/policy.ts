/**
 * Policy and rate limit settings of one upstream: `tools`, `resources`, `prompts`, `toolsFor` and
 * `rateLimit` in an UPSTREAMS entry, `UPSTREAM_TOOLS`, `UPSTREAM_RESOURCES`, `UPSTREAM_PROMPTS`,
 * `UPSTREAM_TOOLS_FOR` and `UPSTREAM_RATE_LIMIT` for the single upstream. Problems name the field:
 * `UPSTREAMS.github.tools.deny`, `UPSTREAM_TOOLS`.
 */
import { type ContentKeys, type ContentRules, isPatternList, readContentRules, readNameRules, wildcardPattern } from './name-rules';
import { PEOPLE_HINT, parsePeopleEntry } from './people';
import type { Reader } from './reader';

/**
 * Which tools one person may see and call on one upstream, and (issue #19) which resources and
 * prompts: `resources`/`prompts` undefined means every one.
 */
export interface ToolRules extends ContentRules {
  /** Tool name patterns (`*` matches any run of characters); undefined: every tool not denied. */
  allow: readonly RegExp[] | undefined;
  deny: readonly RegExp[];
  /** Only tools whose annotations say `readOnlyHint: true`. */
  readOnly: boolean;
}

export interface ToolPolicy {
  /** For everyone without a `toolsFor` entry; undefined: every tool. */
  fallback: ToolRules | undefined;
  /** Lowercased email -> rules; beats `groups`. */
  emails: ReadonlyMap<string, ToolRules>;
  /**
   * `group:<name>` entries in the order the configuration lists them (the first of a person's
   * groups in this order wins); beat `domains`.
   */
  groups: ReadonlyArray<readonly [string, ToolRules]>;
  /** Lowercased domain, without "@" -> rules. */
  domains: ReadonlyMap<string, ToolRules>;
}

export interface RateLimitConfig {
  /** Requests a person may make in `periodSeconds`, on this upstream. */
  requests: number;
  periodSeconds: number;
  /**
   * The Durable Object namespace that counts (`RATE_LIMITER` in wrangler.jsonc). Untyped here, so
   * configuration names no module above it: src/policy/rate-limiter.ts types it as its own class.
   */
  limiter: DurableObjectNamespace;
}

const TOOL_KEYS = ['allow', 'deny', 'readOnly'];
const TOOLS_HINT = 'a JSON object such as {"allow":["get_*"],"deny":["delete_*"],"readOnly":true}';

/**
 * The policy in `toolsKey`, `toolsForKey` and the `content` keys, or undefined when none is set. A
 * malformed entry is a problem, never silently "every tool": the policy fails closed at
 * configuration time too.
 */
export function readToolPolicy(reader: Reader, toolsKey: string, toolsForKey: string, content: ContentKeys): ToolPolicy | undefined {
  const tools = reader.has(toolsKey) ? readToolRules(reader, toolsKey, reader.jsonObject(toolsKey, TOOLS_HINT)) : undefined;
  const upstream = readContentRules(reader, content);
  const fallback = tools || upstream.resources || upstream.prompts ? { ...(tools ?? EVERY_TOOL), ...upstream } : undefined;
  const toolsFor = reader.jsonObject(toolsForKey, `a JSON object of email, @domain or group:<name> to ${TOOLS_HINT}`);
  const emails = new Map<string, ToolRules>();
  const groups: Array<readonly [string, ToolRules]> = [];
  const domains = new Map<string, ToolRules>();
  // Object.entries keeps the configuration's order for these keys: none looks like an array index.
  for (const [who, value] of Object.entries(toolsFor ?? {})) {
    const entry = parsePeopleEntry(who);
    if (!entry) {
      reader.problem(toolsForKey, `every key must be ${PEOPLE_HINT}; e.g. {"group:maintainers":{"deny":["delete_*"]}}`);
      continue;
    }
    const label = `${toolsForKey}.${entry.kind === 'group' ? `group:${entry.name}` : entry.kind === 'domain' ? `@${entry.name}` : entry.name}`;
    const object = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    if (!object) {
      reader.problem(label, `must be ${TOOLS_HINT}`);
      continue;
    }
    const rules = readPersonRules(reader, label, object, { ...(tools ?? EVERY_TOOL), ...upstream });
    if (!rules) continue;
    if (entry.kind === 'group') groups.push([entry.name, rules]);
    else (entry.kind === 'domain' ? domains : emails).set(entry.name, rules);
  }
  if (!fallback && emails.size === 0 && groups.length === 0 && domains.size === 0) return undefined;
  return { fallback, emails, groups, domains };
}

const EVERY_TOOL: ToolRules = { allow: undefined, deny: [], readOnly: false };
const PERSON_KINDS = ['tools', 'resources', 'prompts'];

/**
 * A `toolsFor` entry: flat tool rules (`{"deny":["delete_*"]}`, which replace `tools` and keep the
 * upstream's resources and prompts), or `{"tools":…,"resources":…,"prompts":…}`, each given kind
 * replacing the upstream's and each missing one kept from `inherited`.
 */
function readPersonRules(reader: Reader, key: string, object: Record<string, unknown>, inherited: ToolRules): ToolRules | undefined {
  const { resources, prompts } = inherited;
  if (!Object.keys(object).some((k) => PERSON_KINDS.includes(k))) {
    const tools = readToolRules(reader, key, object);
    return tools && { ...tools, resources, prompts };
  }
  const mixed = Object.keys(object).filter((k) => !PERSON_KINDS.includes(k));
  if (mixed.length > 0) {
    reader.problem(key, `mixes ${PERSON_KINDS.join(', ')} with tool settings (${mixed.join(', ')}): put those under "tools"`);
    return undefined;
  }
  const before = reader.problems.length;
  const given = <T>(field: string, read: (value: unknown) => T | undefined, otherwise: T) => (object[field] === undefined ? otherwise : read(object[field]));
  const tools = given('tools', (v) => readToolRules(reader, `${key}.tools`, isObject(v) ? v : notObject(reader, `${key}.tools`)), inherited);
  const rules = {
    ...(tools ?? EVERY_TOOL),
    resources: given('resources', (v) => readNameRules(reader, `${key}.resources`, v, 'resources'), resources),
    prompts: given('prompts', (v) => readNameRules(reader, `${key}.prompts`, v, 'prompts'), prompts),
  };
  return reader.problems.length > before ? undefined : rules;
}

function notObject(reader: Reader, key: string): undefined {
  reader.problem(key, `must be ${TOOLS_HINT}`);
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readToolRules(reader: Reader, key: string, object: Record<string, unknown> | undefined): ToolRules | undefined {
  if (!object) return undefined;
  const before = reader.problems.length;
  for (const unknown of Object.keys(object).filter((k) => !TOOL_KEYS.includes(k))) {
    reader.problem(`${key}.${unknown}`, `is not a tools setting: use ${TOOL_KEYS.join(', ')}`);
  }
  const allow = object.allow === undefined ? undefined : patterns(reader, `${key}.allow`, object.allow);
  const deny = object.deny === undefined ? [] : patterns(reader, `${key}.deny`, object.deny);
  const readOnly = object.readOnly ?? false;
  if (typeof readOnly !== 'boolean') reader.problem(`${key}.readOnly`, 'must be true or false');
  if (reader.problems.length > before) return undefined;
  return { allow, deny: deny ?? [], readOnly: readOnly === true };
}

function patterns(reader: Reader, key: string, value: unknown): RegExp[] | undefined {
  if (!isPatternList(value, 128)) {
    reader.problem(key, 'must be an array of tool names, each with optional * wildcards, e.g. ["get_*","search_code"]');
    return undefined;
  }
  return value.map((pattern) => wildcardPattern(pattern.trim()));
}

const RATE_HINT = 'a JSON object such as {"requests":120,"period":60}: requests per person per period in seconds';

/** `{"requests": N, "period": S}`; needs the RATE_LIMITER Durable Object binding. */
export function readRateLimit(reader: Reader, key: string, env: Readonly<Record<string, unknown>>): RateLimitConfig | undefined {
  const object = reader.jsonObject(key, RATE_HINT);
  if (!object) return undefined;
  const { requests, period, ...rest } = object;
  for (const unknown of Object.keys(rest)) reader.problem(`${key}.${unknown}`, 'is not a rate limit setting: use requests, period');
  const whole = (value: unknown, max: number) => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max;
  if (!whole(requests, 1_000_000)) reader.problem(`${key}.requests`, 'must be a whole number of requests from 1 to 1000000');
  if (!whole(period, 86_400)) reader.problem(`${key}.period`, 'must be a whole number of seconds from 1 to 86400');
  const limiter = env.RATE_LIMITER as RateLimitConfig['limiter'] | undefined;
  if (!limiter) reader.problem(key, 'needs the RATE_LIMITER Durable Object binding: keep it in wrangler.jsonc');
  if (!whole(requests, 1_000_000) || !whole(period, 86_400) || !limiter || Object.keys(rest).length > 0) return undefined;
  return { requests: requests as number, periodSeconds: period as number, limiter };
}
