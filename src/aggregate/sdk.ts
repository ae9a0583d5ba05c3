/**
 * The v2 MCP SDK server, loaded on an aggregate's request only. It is a module of its own beside
 * the Worker's bundle (scripts/build-mcp-server-module.mjs, wrangler.jsonc `find_additional_modules`
 * with `base_dir` this folder), not inside it: the plain proxy's script stays as small, and its
 * startup as short, as without aggregates; the first aggregate request in an isolate compiles it.
 * The specifier is relative to this folder, which is wrangler's `base_dir`, so the bundle's import
 * and the uploaded module's name agree (tests resolve it to the package: vitest.config.ts).
 */
export type McpServerSdk = typeof import('./vendor/mcp-server.mjs');

let loading: Promise<McpServerSdk> | undefined;

export function mcpServerSdk(): Promise<McpServerSdk> {
  loading ??= import('./vendor/mcp-server.mjs');
  return loading;
}
