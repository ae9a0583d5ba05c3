/**
 * Which tools one person may see and call: pure functions over the configured rules and the
 * tool objects of a `tools/list` result. Which rules apply to whom is decided in src/permissions/.
 */
import type { ToolRules } from '../config';

/** Whether `allow` (when present) and `deny` let this name through; annotations aside. */
export function isToolNameAllowed(rules: ToolRules, name: string): boolean {
  if (rules.allow && !rules.allow.some((pattern) => pattern.test(name))) return false;
  return !rules.deny.some((pattern) => pattern.test(name));
}

/** `annotations.readOnlyHint` of a tool object from a list: true, false, or undefined when absent. */
export function readOnlyHintOf(tool: unknown): boolean | undefined {
  if (!isObject(tool) || !isObject(tool.annotations)) return undefined;
  const hint = tool.annotations.readOnlyHint;
  return typeof hint === 'boolean' ? hint : undefined;
}

/** Whether a tool object from a `tools/list` result may be shown. Anything malformed is not. */
export function isToolAvailable(rules: ToolRules, tool: unknown): boolean {
  if (!isObject(tool) || typeof tool.name !== 'string') return false;
  if (!isToolNameAllowed(rules, tool.name)) return false;
  return !rules.readOnly || readOnlyHintOf(tool) === true;
}

/**
 * A `tools/list` result without the unavailable tools; every other field (`nextCursor`, `_meta`)
 * unchanged. A result without a `tools` array lists nothing the client may use: it becomes empty.
 */
export function filterToolsResult(rules: ToolRules, result: unknown): Record<string, unknown> {
  const fields = isObject(result) ? result : {};
  const tools = Array.isArray(fields.tools) ? fields.tools : [];
  return { ...fields, tools: tools.filter((tool) => isToolAvailable(rules, tool)) };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
