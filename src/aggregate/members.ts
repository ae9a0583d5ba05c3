/**
 * What one person may reach through an aggregate: each upstream the allowlists let them use, with
 * their credential for it and their tool rules there. An upstream they are not allowed on, or one
 * the operator gave them no credential for, is simply not a member: the aggregate never mentions it.
 */
import type { AggregateConfig, Config, ToolRules, UpstreamConfig } from '../config';
import type { Identity } from '../identity';
import { refusalFor, toolRulesFor } from '../permissions';
import { takesOwnTokens, type UpstreamCredential, upstreamCredential } from '../upstreams';
import type { TokenVault } from '../vault';

export interface Member {
  upstream: UpstreamConfig;
  /** What descriptions and errors call it: its title, else its name. */
  label: string;
  /** This person's rules there; undefined: every tool. */
  rules: ToolRules | undefined;
  /** Undefined: a `userSupplied` upstream they have stored no token for yet. */
  credential: UpstreamCredential | undefined;
}

/** The aggregate's upstreams as this person may use them, in the configured order. */
export async function membersFor(config: Config, aggregate: AggregateConfig, identity: Identity, vault: TokenVault | undefined): Promise<Member[]> {
  const members = await Promise.all(
    aggregate.upstreams.map(async (upstream): Promise<Member | undefined> => {
      if (refusalFor(config, upstream, identity) !== undefined) return undefined;
      const credential = await upstreamCredential(upstream, identity.email, vault);
      // refusalFor lets a missing credential through only where the person brings their own.
      if (!credential && !takesOwnTokens(upstream)) return undefined;
      return { upstream, label: upstream.title ?? upstream.name, rules: toolRulesFor(upstream.tools, identity), credential };
    }),
  );
  return members.filter((member): member is Member => member !== undefined);
}
