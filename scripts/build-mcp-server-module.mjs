// @ts-check
/**
 * Builds the v2 MCP SDK server (`@modelcontextprotocol/server`, with zod) into one ES module of
 * its own, src/aggregate/vendor/mcp-server.mjs (git-ignored), which wrangler uploads beside the
 * Worker's bundle (`find_additional_modules`, wrangler.jsonc) instead of inside it. Only an
 * aggregate's request imports it (src/aggregate/sdk.ts), so the plain proxy's script neither
 * holds nor compiles the SDK (issue #21). Run by wrangler's custom build before `wrangler dev`
 * and `wrangler deploy`; the tests resolve the import to the package itself (vitest.config.ts).
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'src/aggregate/vendor/mcp-server.mjs');

await mkdir(dirname(OUT), { recursive: true });
await build({
  stdin: { contents: "export * from '@modelcontextprotocol/server';", resolveDir: ROOT, sourcefile: 'mcp-server-entry.mjs' },
  outfile: OUT,
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2024',
  // What wrangler picks for the Worker's own bundle: the SDK's web-standard builds.
  conditions: ['workerd', 'worker', 'browser', 'import', 'default'],
  mainFields: ['module', 'main'],
  external: ['node:*', 'cloudflare:*'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
