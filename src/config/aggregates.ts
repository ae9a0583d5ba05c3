/**
 * Aggregates (`AGGREGATES`): one connector over several upstreams, served at `/<name>/mcp`.
 * Names share one namespace with `UPSTREAMS`.
 */
import type { UpstreamConfig } from './upstreams';

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
