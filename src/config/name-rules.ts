/**
 * The `*` patterns every policy uses, and the rules over names other than tools (issue #19):
 * `resources` by URI (a template by its `uriTemplate`), `prompts` by name. Problems name the
 * field: `UPSTREAMS.github.resources.deny`, `UPSTREAM_PROMPTS`.
 */
import type { Reader } from './reader';

/** Which resources (by URI) or prompts (by name) one person may see and use. */
export interface NameRules {
  /** Patterns (`*` matches any run of characters); undefined: every one not denied. */
  allow: readonly RegExp[] | undefined;
  deny: readonly RegExp[];
}

/** The resource and prompt rules of one entry; undefined: every resource, every prompt. */
export interface ContentRules {
  resources?: NameRules;
  prompts?: NameRules;
}

/** Where an upstream's `resources` and `prompts` are read from (`UPSTREAM_RESOURCES`, `resources`). */
export interface ContentKeys {
  resources: string;
  prompts: string;
}

const PATTERN = /^[^\s*]*(\*[^\s*]*)*$/;
const HINTS = {
  resources: { example: '{"allow":["repo://*"],"deny":["*secret*"]}', items: 'resource URIs', sample: '["repo://*","file:///docs/*"]', max: 512 },
  prompts: { example: '{"deny":["admin_*"]}', items: 'prompt names', sample: '["summarize","review_*"]', max: 128 },
} as const;

/** The upstream's own `resources` and `prompts`, each undefined when not set. */
export function readContentRules(reader: Reader, keys: ContentKeys): ContentRules {
  const rules: ContentRules = {};
  for (const kind of ['resources', 'prompts'] as const) {
    const key = keys[kind];
    if (!reader.has(key)) continue;
    const object = reader.jsonObject(key, `a JSON object such as ${HINTS[kind].example}`);
    const read = object ? readNameRules(reader, key, object, kind) : undefined;
    if (read) rules[kind] = read;
  }
  return rules;
}

/** `{allow, deny}` of resources or prompts at `key`; undefined (and a problem) when malformed. */
export function readNameRules(reader: Reader, key: string, value: unknown, kind: keyof typeof HINTS): NameRules | undefined {
  const hint = HINTS[kind];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    reader.problem(key, `must be a JSON object such as ${hint.example}`);
    return undefined;
  }
  const object = value as Record<string, unknown>;
  const before = reader.problems.length;
  for (const unknown of Object.keys(object).filter((k) => k !== 'allow' && k !== 'deny')) {
    reader.problem(`${key}.${unknown}`, `is not a ${kind} setting: use allow, deny`);
  }
  const read = (field: 'allow' | 'deny') => {
    const items = object[field];
    if (items === undefined) return undefined;
    if (!isPatternList(items, hint.max)) {
      reader.problem(`${key}.${field}`, `must be an array of ${hint.items}, each with optional * wildcards, e.g. ${hint.sample}`);
      return undefined;
    }
    return items.map((pattern) => wildcardPattern(pattern.trim()));
  };
  const allow = read('allow');
  const deny = read('deny') ?? [];
  return reader.problems.length > before ? undefined : { allow, deny };
}

/** Whether a pattern list is well formed (for the tool rules, which keep their own hint). */
export function isPatternList(value: unknown, max: number): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v.trim() !== '' && v.length <= max && PATTERN.test(v.trim()));
}

/** `delete_*` -> /^delete_.*$/; every other character matches itself. */
export function wildcardPattern(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's');
}
