import { defineConfig } from 'vitest/config';

// No internet here or in CI: stop wrangler fetching request metadata and sending metrics at start.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_SEND_METRICS ??= 'false';

/** End-to-end: real processes on loopback, driven from Node. Each file starts and stops its own. */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    // Each file runs two wrangler dev processes; more at once only slows a 2-core machine down.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
  },
});
