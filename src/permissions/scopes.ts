/**
 * The one scope the gateway grants: access to the upstream through it. Clients ask for others
 * (claude.ai has sent `claudeai`); those are ignored rather than refused.
 */
export const GRANTED_SCOPES = ['mcp'];
