import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// No internet here or in CI: stop wrangler fetching request metadata and sending metrics at start.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_SEND_METRICS ??= 'false';

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.jsonc' },
      miniflare: {
        // Tests pass their own configuration per request; these keep the runtime offline.
        // TEST_MIGRATIONS: the audit trail's migrations, applied by the tests that read the trail
        // (test/fixtures/audit.ts) after each reset, which empties the local D1 like every binding.
        bindings: { TEST_MIGRATIONS: await readD1Migrations('migrations') },
      },
    }),
  ],
  // The SDK module wrangler's custom build makes for an aggregate (src/aggregate/sdk.ts) is the
  // package itself here: the tests need no build step.
  resolve: { alias: [{ find: /^\.\/vendor\/mcp-server\.mjs$/, replacement: '@modelcontextprotocol/server' }] },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['./test/fixtures/upstream-global-setup.mjs'],
    exclude: ['test/e2e/**'],
    // A sign-in through the Worker takes a few hundred milliseconds alone, many times that on a
    // busy 2-core machine: the 5 s default fails slow tests that are not stuck.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
