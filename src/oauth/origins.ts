import type { Config } from '../config';
import type { OriginGateway } from '../context';
import { buildGateway } from './servers';

const MAX_ORIGINS = 16;
const gateways = new WeakMap<Config, Map<string, OriginGateway>>();

/** The memoized roles for an origin; a handful per deployment, bounded all the same. */
export function gatewayFor(origin: string, config: Config): OriginGateway {
  let byOrigin = gateways.get(config);
  if (!byOrigin) gateways.set(config, (byOrigin = new Map()));
  let gateway = byOrigin.get(origin);
  if (!gateway) {
    gateway = buildGateway(origin, config);
    if (byOrigin.size >= MAX_ORIGINS) byOrigin.delete(byOrigin.keys().next().value as string);
    byOrigin.set(origin, gateway);
  }
  return gateway;
}
