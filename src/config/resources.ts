/**
 * What the gateway protects: each upstream, and each aggregate over several, is one OAuth
 * protected resource at `<origin><path>` (RFC 8707), with its own audience, metadata and consent.
 */
import type { AggregateConfig } from './aggregates';
import { type UpstreamConfig, upstreamLabel } from './upstreams';

/** One protected resource: an upstream, or an aggregate over `upstreams`. */
export type GatewayResource = {
  /** The upstream's or the aggregate's name: what the audit trail and the route table call it. */
  name: string;
  title: string | undefined;
  path: string;
  /** The upstreams a token for it reaches: the upstream itself, or the aggregate's, in order. */
  upstreams: readonly UpstreamConfig[];
} & ({ kind: 'upstream'; upstream: UpstreamConfig } | { kind: 'aggregate'; aggregate: AggregateConfig });

/** Every protected resource: the upstreams first, then the aggregates. */
export function gatewayResources(config: { upstreams: readonly UpstreamConfig[]; aggregates: readonly AggregateConfig[] }): GatewayResource[] {
  return [
    ...config.upstreams.map((upstream): GatewayResource => ({ ...pick(upstream), upstreams: [upstream], kind: 'upstream', upstream })),
    ...config.aggregates.map((aggregate): GatewayResource => ({ ...pick(aggregate), upstreams: aggregate.upstreams, kind: 'aggregate', aggregate })),
  ];
}

/** How pages name a resource: its title, else its name; undefined for the single `/mcp` upstream. */
export function resourceLabel(resource: GatewayResource): string | undefined {
  return resource.kind === 'upstream' ? upstreamLabel(resource.upstream) : (resource.title ?? resource.name);
}

function pick({ name, title, path }: { name: string; title: string | undefined; path: string }) {
  return { name, title, path };
}
