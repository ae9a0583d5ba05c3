/**
 * What the route table hands to each leg, as types only: this module imports nothing of the
 * gateway's own above config and identity, so every leg and the router can depend on it without
 * depending on each other.
 */
import type { OAuthAuthorizationServer, OAuthHelpers, OAuthResourceServer, OAuthResourceTokenValidation } from '@cloudflare/workers-oauth-provider';
import type { Config, GatewayResource, UpstreamConfig } from './config';
import type { Identity } from './identity';

/** What the router needs of the token cache (src/oauth/token-cache.ts): forgetting a revoked grant's tokens. */
export interface GrantTokenCache {
  forgetGrant(userId: string, grantId: string): void;
  forgetGrantOf(token: string): boolean;
}

/**
 * The OAuth roles for one origin: one authorization server at the origin's root (claude.ai builds
 * `/authorize`, `/token` and `/register` from the origin), and one protected resource per upstream
 * and per aggregate at `<origin><path>` (RFC 8707), each with its own metadata and audience. Resources are
 * fixed at construction and must be canonical URLs of this origin, so each origin the Worker is
 * reached on (workers.dev, a custom domain, a local port) gets its own set.
 */
export interface OriginGateway {
  authorizationServer: OAuthAuthorizationServer<Env>;
  /** Upstream or aggregate name (one namespace) -> its resource server. */
  resourceServers: ReadonlyMap<string, OAuthResourceServer<Env, Identity>>;
  /** The upstream or aggregate a canonical resource URL stands for. */
  resourceFor(resource: string | undefined): GatewayResource | undefined;
  /** The resource the root `/.well-known/oauth-protected-resource` describes, if one stands out. */
  defaultUpstream: UpstreamConfig | undefined;
  /** What every resource server checks a token with: the authorization server's check, cached. */
  validateToken(env: Env): (resource: string, token: string) => Promise<OAuthResourceTokenValidation<Identity> | null>;
  /** This configuration's validated tokens (shared by every origin), to forget revoked ones. */
  tokenCache: GrantTokenCache;
}

/** What a page a person's browser visits works with: this request's view of the deployment. */
export interface BrowserLeg {
  helpers: OAuthHelpers;
  gateway: OriginGateway;
  config: Config;
  env: Env;
  ctx: ExecutionContext;
}
