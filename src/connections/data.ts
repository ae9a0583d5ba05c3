/**
 * What /connections shows: per person and upstream, the stored token's status and the MCP apps
 * connected (the library's grants); per aggregate, the apps connected to it (its upstreams'
 * tokens are the upstreams' own, shown with them). Never a token: only when it was saved, and for its owner the
 * last four characters.
 */
import type { GrantSummary, OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { type AggregateConfig, type Config, type GatewayResource, gatewayResources, type UpstreamConfig } from '../config';
import { isAllowedEmail, type Person } from '../permissions';
import { takesOwnTokens } from '../upstreams';
import type { TokenVault } from '../vault';

export interface AppView {
  grantId: string;
  clientName: string;
  redirectHost: string;
  /** Unix seconds. */
  connectedAt: number;
}

export interface UpstreamView {
  upstream: UpstreamConfig;
  /** Set on a `userSupplied` upstream when a token is stored. */
  token: { savedAt: number; lastFour?: string } | undefined;
  apps: AppView[];
}

export interface AggregateView {
  aggregate: AggregateConfig;
  apps: AppView[];
}

export interface PersonView {
  email: string;
  /** Their IdP groups: their own session's, or for an admin's view their newest grant's; undefined: none known. */
  groups: string[] | undefined;
  upstreams: UpstreamView[];
  aggregates: AggregateView[];
}

const MAX_GRANT_PAGES = 10;

/** The grants of one person, every page of them (bounded). */
export async function grantsOf(helpers: OAuthHelpers, email: string): Promise<GrantSummary[]> {
  const grants: GrantSummary[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_GRANT_PAGES; page++) {
    const result = await helpers.listUserGrants(email, cursor ? { cursor } : {});
    grants.push(...result.items);
    cursor = result.cursor;
    if (!cursor) break;
  }
  return grants;
}

/** The upstream or aggregate a grant was made for: its resource's path, on whichever origin issued it. */
export function resourceOfGrant(config: Config, grant: GrantSummary): GatewayResource | undefined {
  const resource = Array.isArray(grant.resource) ? grant.resource[0] : grant.resource;
  const path = resource && URL.canParse(resource) ? new URL(resource).pathname : undefined;
  return gatewayResources(config).find((r) => r.path === path);
}

/** The upstream a grant was made for directly (not through an aggregate). */
export function upstreamOfGrant(config: Config, grant: GrantSummary): UpstreamConfig | undefined {
  const resource = resourceOfGrant(config, grant);
  return resource?.kind === 'upstream' ? resource.upstream : undefined;
}

/**
 * One person's view. `own`: they are looking at it themselves, so the token's last four are shown
 * and their groups are their session's; for someone else, the groups their newest grant was made with.
 */
export async function personView(helpers: OAuthHelpers, vault: TokenVault, config: Config, who: Person, own: boolean): Promise<PersonView> {
  const { email } = who;
  const grants = await grantsOf(helpers, email);
  const groups = own ? who.groups : groupsOfNewest(grants);
  const person = { email, ...(groups ? { groups } : {}) };
  const names = new Map<string, Promise<string>>();
  const clientName = (clientId: string) => {
    let name = names.get(clientId);
    if (!name) {
      // A client ID metadata document may be refetched here; its failure only costs the name.
      name = helpers.lookupClient(clientId).then(
        (c) => c?.clientName?.trim() || clientId,
        () => clientId,
      );
      names.set(clientId, name);
    }
    return name;
  };
  const appsOf = (path: string) =>
    Promise.all(
      grants
        .filter((grant) => resourceOfGrant(config, grant)?.path === path)
        .map(async (grant) => ({
          grantId: grant.id,
          clientName: await clientName(grant.clientId),
          redirectHost: grant.redirectUri && URL.canParse(grant.redirectUri) ? new URL(grant.redirectUri).host : '',
          connectedAt: grant.createdAt,
        })),
    ).then((apps) => apps.sort((a, b) => b.connectedAt - a.connectedAt));
  const connected = (path: string) => grants.some((g) => resourceOfGrant(config, g)?.path === path);
  const upstreams = config.upstreams.filter((u) => isAllowedEmail(config, u, person) || connected(u.path));
  // An aggregate is theirs when any upstream in it admits them, as at its login.
  const aggregates = config.aggregates.filter((a) => a.upstreams.some((u) => isAllowedEmail(config, u, person)) || connected(a.path));
  return {
    email,
    groups,
    upstreams: await Promise.all(
      upstreams.map(async (upstream): Promise<UpstreamView> => {
        const stored = takesOwnTokens(upstream) ? await vault.read(email, upstream.name) : undefined;
        return {
          upstream,
          token: stored && { savedAt: stored.savedAt, ...(own ? { lastFour: stored.token.slice(-4) } : {}) },
          apps: await appsOf(upstream.path),
        };
      }),
    ),
    aggregates: await Promise.all(aggregates.map(async (aggregate): Promise<AggregateView> => ({ aggregate, apps: await appsOf(aggregate.path) }))),
  };
}

/** The groups of the newest grant that recorded any (src/login/complete.ts), or undefined. */
function groupsOfNewest(grants: readonly GrantSummary[]): string[] | undefined {
  const recorded = grants
    .filter((g) => Array.isArray(g.metadata?.groups) && g.metadata.groups.every((group: unknown) => typeof group === 'string'))
    .sort((a, b) => b.createdAt - a.createdAt);
  return recorded[0]?.metadata.groups;
}

/** Everyone with a grant or a stored token: the admin's list. */
export async function everyone(kv: KVNamespace, vault: TokenVault): Promise<string[]> {
  const emails = new Set((await vault.list()).map((status) => status.email));
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix: 'grant:', ...(cursor ? { cursor } : {}) });
    // The library's grant keys are `grant:<userId>:<grantId>`, and the userId here is the email.
    for (const { name } of page.keys) emails.add(name.slice('grant:'.length, name.lastIndexOf(':')));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return [...emails].sort();
}
