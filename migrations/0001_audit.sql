-- The audit trail (docs/audit.md). One row per event; never a token, secret, header value or body.
-- `email` is whose trail the row is on (the caller of an MCP request, the subject of a page event);
-- `actor` is who did it (the same person, or an admin acting on someone). Times are milliseconds
-- since the epoch (UTC). Keyset pagination runs on (time, id), newest first.
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  -- The AuditEvent kind: mcp_proxy, sign_in, consent_approved, consent_denied, own_token_saved,
  -- own_token_replaced, own_token_deleted, app_disconnected, mcp_proxy_endpoint_refused.
  kind TEXT NOT NULL,
  email TEXT,
  actor TEXT,
  -- JSON array of the person's groups, when known.
  groups TEXT,
  client_id TEXT,
  client_name TEXT,
  upstream TEXT,
  rpc_method TEXT,
  -- The tool, resource URI or prompt name the request named (rpc_method says which), comma-separated.
  tool TEXT,
  -- ok | upstream_error | refused_by_policy | rate_limited | not_allowed | auth_failed
  outcome TEXT NOT NULL,
  status INTEGER,
  upstream_status INTEGER,
  duration_ms INTEGER,
  -- Only with the upstream's `audit.arguments` ("keys": a JSON array of names; "full": the JSON, capped).
  arguments TEXT
);

CREATE INDEX audit_events_time ON audit_events (time, id);
CREATE INDEX audit_events_email_time ON audit_events (email, time, id);
CREATE INDEX audit_events_upstream_time ON audit_events (upstream, time, id);
CREATE INDEX audit_events_tool_time ON audit_events (tool, time, id);
CREATE INDEX audit_events_outcome_time ON audit_events (outcome, time, id);
CREATE INDEX audit_events_client_time ON audit_events (client_id, time, id);

-- The schema version the code compares with AUDIT_SCHEMA_VERSION (src/audit/schema.ts): /health
-- and the doctor name a database that is missing this table or is behind.
CREATE TABLE audit_schema (version INTEGER NOT NULL);
INSERT INTO audit_schema (version) VALUES (1);
