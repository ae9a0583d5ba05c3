// @ts-check
/**
 * `npm run doctor`: checks a configuration before it is deployed, or a deployed gateway from
 * outside. One line per check; exits 1 when something is wrong.
 *
 *   npm run doctor                                 checks .dev.vars
 *   npm run doctor -- --env-file .prod.vars        checks that file
 *   npm run doctor -- --url https://<host>         checks the gateway deployed there
 */
import { parseArgs } from 'node:util';
import { checkDeployment, checkSettings, Report } from './lib/doctor.mjs';
import { readEnvFile } from './lib/worker-config.mjs';

const USAGE = `npm run doctor [-- --env-file FILE] [-- --url https://<host>]

  --env-file FILE   settings to check before deploying (default .dev.vars): the Worker's own
                    validation, then the Access app and every upstream they name
  --url URL         a deployed gateway, from outside: /health, metadata, every connector's 401
                    challenge, and the redirect URL the Access app needs
Both may be given. Exits 1 when a check fails.`;

let flags;
try {
  ({ values: flags } = parseArgs({ options: { 'env-file': { type: 'string' }, url: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
} catch (error) {
  console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

const report = new Report();
if (flags['env-file'] !== undefined || flags.url === undefined) {
  const file = flags['env-file'] ?? '.dev.vars';
  /** @type {Record<string, string> | undefined} */
  let env;
  try {
    env = await readEnvFile(file);
  } catch (error) {
    const missing = /** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT';
    report.fail(
      `cannot read ${file}${missing ? ': no such file' : ''}`,
      missing ? 'run `npm run setup` to write one, or copy .dev.vars.example' : 'check the file',
    );
  }
  if (env) {
    console.log(`Checking the settings in ${file}`);
    await checkSettings(env, report);
  }
}
if (flags.url !== undefined) {
  console.log(`Checking the gateway at ${flags.url}`);
  await checkDeployment(flags.url, report);
}
console.log(report.failures === 0 ? 'All checks passed.' : `${report.failures} check${report.failures === 1 ? '' : 's'} failed.`);
process.exitCode = report.failures === 0 ? 0 : 1;
