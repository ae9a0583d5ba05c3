/**
 * Who signed in: what a grant's props hold (encrypted by workers-oauth-provider) and what the
 * MCP handler receives as `ctx.props`. Never an upstream credential: those are looked up at
 * request time, so rotating a secret takes effect at once.
 */
export interface Identity {
  /** Lowercased, as verified by Cloudflare Access. */
  email: string;
  /** Access's subject identifier for the user. */
  sub: string;
  name?: string;
  /**
   * When Access let them in, in seconds since the epoch: a grant ends MAX_GRANT_AGE after it.
   * Grants made before issue #16 get it at their first refresh since (src/permissions/grant-age.ts).
   */
  signedInAt?: number;
  /**
   * The IdP groups Access sent (the `groups` claim, src/sign-in/groups.ts), as sent: what
   * `group:<name>` entries match. Absent: none known, e.g. a grant made before issue #19.
   */
  groups?: string[];
  /**
   * The name the MCP app this grant was made for gave itself (its registration or client ID
   * metadata document) at login, capped and on one line: the audit trail stores it with each call
   * without a registry read per request. Absent on grants made before; the pages look those up.
   */
  clientName?: string;
}
