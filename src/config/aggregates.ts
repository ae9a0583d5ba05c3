/**
 * Aggregates (`AGGREGATES`): one connector over several upstreams, served at `/<name>/mcp`.
 * Names share one namespace with `UPSTREAMS`.
 */

import { type ConfigProblem, Reader } from './reader';
import { NAME, RESERVED_NAMES, SINGLE_UPSTREAM_NAME, type UpstreamConfig } from './upstreams';

export interface AggregateConfig {
  /** The `AGGREGATES` key; never an upstream's name too. */
  name: string;
  /** Shown to people (consent, /connections, the server's name); undefined: the name. */
  title: string | undefined;
  /** Where the gateway serves it: `/<name>/mcp`. Also its resource's path (RFC 8707). */
  path: string;
  /** The upstreams it reaches, in the configured order; each a configured named upstream. */
  upstreams: readonly UpstreamConfig[];
}

const SETTINGS = ['title', 'upstreams'] as const;
const ENTRY = '{"title":"Work tools","upstreams":["github","linear"]}';
const EXAMPLE = `{"work":${ENTRY}}`;

/**
 * Every aggregate in AGGREGATES, each over upstreams configured in UPSTREAMS; problems are added
 * to `problems`. `upstreams` are the upstreams that loaded; an UPSTREAMS entry that did not load
 * has its own problem, so an aggregate naming it adds none.
 */
export function readAggregates(env: Readonly<Record<string, unknown>>, problems: ConfigProblem[], upstreams: readonly UpstreamConfig[]): AggregateConfig[] {
  const reader = new Reader(env, problems);
  const all = reader.jsonObject('AGGREGATES', `a JSON object of aggregate name to its settings, e.g. ${EXAMPLE}`);
  if (!all) return [];
  // The names UPSTREAMS holds, loaded or not; its own problems are reported where it is read.
  const named = Object.keys(new Reader(env, []).jsonObject('UPSTREAMS', '') ?? {});
  const aggregates: AggregateConfig[] = [];
  for (const [name, settings] of Object.entries(all)) {
    const aggregate = readAggregate(name, settings, { problems, upstreams, named, aggregates: Object.keys(all) });
    if (aggregate) aggregates.push(aggregate);
  }
  return aggregates;
}

interface Known {
  problems: ConfigProblem[];
  upstreams: readonly UpstreamConfig[];
  /** Every UPSTREAMS key, including entries that failed to load. */
  named: readonly string[];
  /** Every AGGREGATES key. */
  aggregates: readonly string[];
}

function readAggregate(name: string, settings: unknown, known: Known): AggregateConfig | undefined {
  const { problems } = known;
  const label = `AGGREGATES.${name}`;
  const before = problems.length;
  if (!NAME.test(name) || RESERVED_NAMES.has(name)) {
    problems.push({
      variable: label,
      message: `is not a usable name: use 1 to 32 of a-z, 0-9 and - (no _, which splits <upstream>_<tool>), other than ${[...RESERVED_NAMES].join(', ')}`,
    });
  } else if (known.named.includes(name)) {
    // One namespace: both would be served at /<name>/mcp.
    problems.push({ variable: label, message: `clashes with UPSTREAMS.${name}: both would be /${name}/mcp; rename one of them` });
  }
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    problems.push({ variable: label, message: `must be an object of settings, e.g. ${ENTRY}` });
    return undefined;
  }
  const reader = new Reader(settings as Record<string, unknown>, problems, `${label}.`);
  for (const key of Object.keys(settings).filter((key) => !(SETTINGS as readonly string[]).includes(key))) {
    reader.problem(key, `is not a setting: use ${SETTINGS.join(', ')}`);
  }
  const title = reader.title('title');
  const upstreams = readMembers(reader, (settings as Record<string, unknown>).upstreams, known);
  return problems.length === before && upstreams ? { name, title, path: `/${name}/mcp`, upstreams } : undefined;
}

/** `upstreams`: names of configured UPSTREAMS entries, each once. */
function readMembers(reader: Reader, value: unknown, known: Known): UpstreamConfig[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    reader.problem('upstreams', 'must list the UPSTREAMS names it reaches, e.g. ["github","linear"]');
    return undefined;
  }
  const members: UpstreamConfig[] = [];
  const seen = new Set<string>();
  let complete = true;
  for (const [index, entry] of (value as unknown[]).entries()) {
    const problem = memberProblem(entry, seen, known);
    if (problem) reader.problem(`upstreams[${index}]`, problem);
    const upstream = typeof entry === 'string' ? known.upstreams.find((u) => u.name === entry) : undefined;
    if (problem !== undefined || !upstream) complete = false;
    else members.push(upstream);
    if (typeof entry === 'string') seen.add(entry);
  }
  return complete ? members : undefined;
}

/**
 * What is wrong with one entry of `upstreams`; '' for an UPSTREAMS entry that did not load (its
 * own problem says why); undefined when it names a loaded upstream for the first time.
 */
function memberProblem(entry: unknown, seen: ReadonlySet<string>, known: Known): string | undefined {
  if (typeof entry !== 'string') return 'must be the name of an upstream in UPSTREAMS';
  // Quoted as JSON, so a stray control character cannot break the log line.
  const quoted = JSON.stringify(entry.slice(0, 40));
  if (seen.has(entry)) return `${quoted} is listed twice: list each upstream once`;
  // The single upstream's tools would be `mcp_<tool>` under a server people only know as "this
  // MCP server", and it has no allowlist of its own: name it in UPSTREAMS to include it.
  if (entry === SINGLE_UPSTREAM_NAME)
    return `${quoted} is the single upstream (UPSTREAM_URL), which has no name of its own: configure it in UPSTREAMS under a name to include it`;
  if (known.aggregates.includes(entry)) return `${quoted} is an aggregate: an aggregate lists upstreams from UPSTREAMS only`;
  if (known.upstreams.some((u) => u.name === entry)) return undefined;
  return known.named.includes(entry) ? '' : `${quoted} is not an upstream in UPSTREAMS`;
}
