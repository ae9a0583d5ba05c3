// @ts-check
/**
 * The Worker's own configuration code (src/config), loaded into Node for the doctor and setup:
 * one parser and one set of rules for the Worker and the scripts that check its settings.
 *
 * Node 22 runs TypeScript itself (`--experimental-transform-types`, which the npm scripts pass:
 * the config code uses parameter properties, which plain type stripping refuses). Wrangler's
 * bundler resolves the Worker's extension-less imports (`./reader`); the hook below does the
 * same for relative imports, so no build step stands between the scripts and src/.
 */

import { readFile } from 'node:fs/promises';
import { registerHooks } from 'node:module';
import { parseEnv } from 'node:util';

if (!process.features.typescript) {
  console.error(
    "This script loads the Worker's TypeScript: run it through npm (`npm run doctor`, `npm run setup`), which passes --experimental-transform-types.",
  );
  process.exit(2);
}

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      const code = /** @type {NodeJS.ErrnoException} */ (error).code;
      if (!specifier.startsWith('.') || (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'ERR_UNSUPPORTED_DIR_IMPORT')) throw error;
      for (const candidate of [`${specifier}.ts`, `${specifier}/index.ts`]) {
        try {
          return nextResolve(candidate, context);
        } catch {
          // Try the next form.
        }
      }
      throw error;
    }
  },
});

/** @typedef {import('../../src/config/index.ts').Config} Config */
/** @typedef {import('../../src/config/index.ts').ConfigProblem} ConfigProblem */
/** @typedef {import('../../src/config/index.ts').UpstreamConfig} UpstreamConfig */

/** The Worker's `src/config` module. */
export const workerConfig = await import('../../src/config/index.ts');
/**
 * The Worker's upstream registry (`src/upstreams`): how the proxy builds the upstream's header,
 * and the gateway's own MCP client, which the doctor's upstream checks use.
 */
export const workerUpstreams = await import('../../src/upstreams/index.ts');

/**
 * The Worker's verdict on these settings: its `Config`, or the problems `ConfigError` lists.
 * @param {Record<string, string>} env
 * @returns {{ config: Config, problems?: undefined } | { config?: undefined, problems: readonly ConfigProblem[] }}
 */
export function loadWorkerConfig(env) {
  try {
    return { config: workerConfig.loadConfig(env) };
  } catch (error) {
    if (error instanceof workerConfig.ConfigError) return { problems: error.problems };
    throw error;
  }
}

/**
 * A settings file as wrangler reads it (`.dev.vars`, `.prod.vars`: dotenv), with Node's own
 * dotenv parser.
 * @param {string} path
 * @returns {Promise<Record<string, string>>}
 */
export async function readEnvFile(path) {
  return /** @type {Record<string, string>} */ (parseEnv(await readFile(path, 'utf8')));
}
