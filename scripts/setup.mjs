// @ts-check
/**
 * `npm run setup`: asks for (or takes as flags) what a deployment needs, writes `.prod.vars`
 * (mode 0600), checks it with the doctor, and prints (or, with --deploy, runs) the deploy commands.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { checkSettings, Report } from './lib/doctor.mjs';
import { loadWorkerConfig } from './lib/worker-config.mjs';

const USAGE = `npm run setup [-- options]

Asks what it needs, with defaults; flags answer the same questions (for scripts, with --yes or
without a terminal every required answer must come from a flag or the environment).

  --team NAME              Zero Trust team name (NAME.cloudflareaccess.com)
  --client-id ID           the Access for SaaS (OIDC) app's client ID
  --client-secret SECRET   its client secret (or the ACCESS_CLIENT_SECRET environment variable)
  --access-url URL         instead of --team: the app's OIDC base, …/cdn-cgi/access/sso/oidc/<client_id>
  --allowed-emails LIST    who may sign in: emails, @domains and group:<name>, comma-separated
                           (default: anyone the Access policy admits)
  --access-scopes SCOPES   what each Access sign-in asks for (default: openid email profile, and
                           groups too when the list names a group:)
  --upstream-url URL       the upstream MCP endpoint, served at /mcp
  --upstream-token TOKEN   its token (or the UPSTREAM_TOKEN environment variable)
  --upstream NAME=URL      another upstream, served at /NAME/mcp (repeatable)
  --upstream-token-for NAME=TOKEN   its token (repeatable; or the NAME_TOKEN environment variable)
  --user-supplied NAME     upstream NAME takes each person's own token, asked for at their first
                           login (repeatable); generates TOKEN_ENCRYPTION_KEY
  --out FILE               where to write (default .prod.vars)
  --force                  overwrite FILE if it exists
  --skip-doctor            write the file without checking Access and the upstreams
  --deploy                 after a clean check, run the two deploy commands
  --yes                    ask nothing`;

const options = /** @type {const} */ ({
  team: { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
  'access-url': { type: 'string' },
  'allowed-emails': { type: 'string' },
  'access-scopes': { type: 'string' },
  'upstream-url': { type: 'string' },
  'upstream-token': { type: 'string' },
  upstream: { type: 'string', multiple: true },
  'upstream-token-for': { type: 'string', multiple: true },
  'user-supplied': { type: 'string', multiple: true },
  out: { type: 'string', default: '.prod.vars' },
  force: { type: 'boolean' },
  'skip-doctor': { type: 'boolean' },
  deploy: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  help: { type: 'boolean', short: 'h' },
});

class SetupError extends Error {}

/** @type {ReturnType<typeof parseArgs<{ options: typeof options }>>['values']} */
let flags;
try {
  ({ values: flags } = parseArgs({ options }));
} catch (error) {
  console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

const interactive = !flags.yes && process.stdin.isTTY === true;
const rl = interactive ? createInterface({ input: process.stdin, output: process.stdout }) : undefined;

try {
  process.exitCode = await setup();
} catch (error) {
  if (!(error instanceof SetupError)) throw error;
  console.error(error.message);
  process.exitCode = 2;
} finally {
  rl?.close();
}

async function setup() {
  const out = /** @type {string} */ (flags.out);
  if (!flags.force && (await exists(out))) {
    if (!(await confirm(`${out} exists. Overwrite it?`))) throw new SetupError(`${out} exists: pass --force to overwrite it, or --out another file.`);
  }

  if (interactive) {
    console.log(`First create the Access app (Zero Trust → Access → Applications → Add → SaaS, protocol OIDC,
PKCE on, scopes openid email profile); its redirect URL is https://<your-worker-host>/callback.
`);
  }
  /** @type {Record<string, string>} */
  const env = {};
  if (flags['access-url']) {
    // Explicit endpoints: the local stand-in, or an app outside cloudflareaccess.com.
    const base = flags['access-url'].replace(/\/+$/, '');
    env.ACCESS_AUTHORIZATION_URL = `${base}/authorization`;
    env.ACCESS_TOKEN_URL = `${base}/token`;
    env.ACCESS_JWKS_URL = `${base}/jwks`;
  } else {
    env.ACCESS_TEAM_DOMAIN = await ask('Zero Trust team name (<team>.cloudflareaccess.com)', flags.team, { required: '--team' });
  }
  env.ACCESS_CLIENT_ID = await ask("Access app's client ID", flags['client-id'], { required: '--client-id' });
  env.ACCESS_CLIENT_SECRET = await ask("Access app's client secret", flags['client-secret'] ?? process.env.ACCESS_CLIENT_SECRET, {
    required: '--client-secret',
    secret: true,
  });
  env.COOKIE_ENCRYPTION_KEY = randomBytes(32).toString('hex');
  const allowed = await ask(
    'Who may sign in: emails, @domains and group:<name>, comma-separated (empty: anyone your Access policy admits)',
    flags['allowed-emails'],
  );
  if (allowed) env.ALLOWED_EMAILS = allowed;
  // A group: entry matches only when the ID token carries the person's groups, which Access sends
  // for the groups scope alone (docs/people.md).
  const scopes = flags['access-scopes'] ?? (/(^|,)\s*group:/i.test(allowed ?? '') ? 'openid email profile groups' : undefined);
  if (scopes) env.ACCESS_SCOPES = scopes;

  env.UPSTREAM_URL = await ask('Upstream MCP server URL, served at /mcp', flags['upstream-url'], { required: '--upstream-url' });
  env.UPSTREAM_TOKEN = await ask('Its token (PAT or API key)', flags['upstream-token'] ?? process.env.UPSTREAM_TOKEN, {
    required: '--upstream-token',
    secret: true,
  });

  /** @type {Record<string, { url: string, token?: string, userSupplied?: true }>} */
  const named = {};
  const tokensFor = pairs(flags['upstream-token-for'] ?? [], '--upstream-token-for');
  const ownTokens = new Set(flags['user-supplied'] ?? []);
  for (const [name, url] of pairs(flags.upstream ?? [], '--upstream')) {
    const variable = tokenVariable(name);
    const token =
      tokensFor.get(name) ??
      process.env[variable] ??
      (ownTokens.has(name) ? undefined : await ask(`Token for ${name}`, undefined, { required: `--upstream-token-for ${name}=TOKEN`, secret: true }));
    named[name] = { url, ...(token ? { token: variable } : {}), ...(ownTokens.has(name) ? { userSupplied: true } : {}) };
    if (token) env[variable] = token;
  }
  while (interactive) {
    const name = await ask('Another upstream? Its name, served at /<name>/mcp (empty: done)', undefined);
    if (!name) break;
    const url = await ask(`URL of ${name}`, undefined, { required: '' });
    if ((await ask(`Does each person bring their own token for ${name}? (y/N)`, 'n')).toLowerCase().startsWith('y')) {
      named[name] = { url, userSupplied: true };
      continue;
    }
    const variable = tokenVariable(name);
    named[name] = { url, token: variable };
    env[variable] = await ask(`Token for ${name}`, undefined, { required: '', secret: true });
  }
  if (Object.keys(named).length > 0) env.UPSTREAMS = JSON.stringify(named);
  // People's own tokens are encrypted at rest under a key of their own.
  if (Object.values(named).some((u) => u.userSupplied)) env.TOKEN_ENCRYPTION_KEY = randomBytes(32).toString('hex');

  // The Worker's own validation, before anything is written.
  const loaded = loadWorkerConfig(env);
  if (loaded.problems) {
    for (const problem of loaded.problems) console.log(`✗ ${problem.variable} — ${problem.message}`);
    console.log(`Nothing written: fix the answers above and run npm run setup again.`);
    return 1;
  }
  await writeEnvFile(out, env);
  console.log(`✓ wrote ${out} (mode 0600; git-ignored when it is .prod.vars): ${Object.keys(env).join(', ')}`);

  let failures = 0;
  if (!flags['skip-doctor']) {
    console.log(`\nChecking it (npm run doctor -- --env-file ${out}):`);
    const report = new Report();
    await checkSettings(env, report);
    failures = report.failures;
    if (failures > 0) console.log(`\n${failures} check${failures === 1 ? '' : 's'} failed: fix ${out}, then \`npm run doctor -- --env-file ${out}\`.`);
  }

  const commands = [
    ['npx', 'wrangler', 'deploy'],
    // After the deploy, which creates the audit trail's D1 database (AUDIT_DB); its tables come from migrations/.
    ['npx', 'wrangler', 'd1', 'migrations', 'apply', 'AUDIT_DB', '--remote'],
    ['npx', 'wrangler', 'secret', 'bulk', out],
  ];
  const deploy =
    failures === 0 &&
    (flags.deploy ||
      (interactive &&
        !flags['skip-doctor'] &&
        (await confirm("Deploy now (npx wrangler deploy, the audit trail's migrations, then npx wrangler secret bulk)?"))));
  if (deploy) {
    for (const command of commands) {
      console.log(`\n$ ${command.join(' ')}`);
      const run = spawnSync(/** @type {string} */ (command[0]), command.slice(1), { stdio: 'inherit' });
      if (run.status !== 0) {
        console.log(`✗ \`${command.join(' ')}\` failed (exit ${run.status ?? run.signal}); run it again once fixed.`);
        return 1;
      }
    }
  } else {
    console.log(`\nTo deploy (\`npx wrangler login\` first, once):
  ${commands.map((c) => c.join(' ')).join('\n  ')}`);
  }
  console.log(`
Then:
  - add https://<your-worker-host>/callback as a redirect URL of the Access app (one per hostname);
  - check the deployment: npm run doctor -- --url https://<your-worker-host>
  - add https://<your-worker-host>/mcp as a connector in your MCP client.`);
  return failures === 0 ? 0 : 1;
}

/**
 * An answer: the flag's value if given, else asked (with the flag's value as default).
 * @param {string} question @param {string | undefined} given
 * @param {{ required?: string, secret?: boolean }} [how]  `required`: the flag that supplies it
 */
async function ask(question, given, how = {}) {
  if (!rl) {
    if (given === undefined && how.required !== undefined)
      throw new SetupError(`Missing ${how.required}: without a terminal every required answer comes from a flag.\n\n${USAGE}`);
    return (given ?? '').trim();
  }
  for (;;) {
    const hint = given ? (how.secret ? ' [keep the given one]' : ` [${given}]`) : '';
    const answer = (await (how.secret ? askHidden(rl, `${question}${hint}: `) : questionOf(rl, `${question}${hint}: `))).trim();
    const value = answer || given?.trim() || '';
    if (value || how.required === undefined) return value;
    console.log('  This one is needed.');
  }
}

/** @param {import('node:readline').Interface} face @param {string} prompt @returns {Promise<string>} */
function questionOf(face, prompt) {
  return new Promise((resolve) => face.question(prompt, resolve));
}

/**
 * Reads a line without echoing it: readline echoes through `_writeToOutput` (the callback
 * interface's; the promises one has no such hook), silenced while the secret is typed.
 * @param {import('node:readline').Interface} face @param {string} prompt
 */
async function askHidden(face, prompt) {
  const writable = /** @type {{ _writeToOutput: (text: string) => void }} */ (/** @type {unknown} */ (face));
  const original = writable._writeToOutput;
  process.stdout.write(prompt);
  writable._writeToOutput = () => {};
  try {
    return await questionOf(face, '');
  } finally {
    writable._writeToOutput = original;
    process.stdout.write('\n');
  }
}

/** @param {string} question */
async function confirm(question) {
  if (!rl) return false;
  return /^y(es)?$/i.test((await questionOf(rl, `${question} [y/N] `)).trim());
}

/** `NAME=VALUE` flags as a map. @param {string[]} values @param {string} flag */
function pairs(values, flag) {
  const map = new Map();
  for (const value of values) {
    const at = value.indexOf('=');
    if (at < 1) throw new SetupError(`${flag} takes NAME=VALUE`);
    map.set(value.slice(0, at).trim(), value.slice(at + 1).trim());
  }
  return map;
}

/** The secret holding a named upstream's token: UPSTREAMS names it and never holds it. @param {string} name */
function tokenVariable(name) {
  return `${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_TOKEN`;
}

/** @param {string} path */
async function exists(path) {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * dotenv, as wrangler reads it for `wrangler dev --env-file` and `wrangler secret bulk`. Single
 * quotes keep a value literal (JSON, `#`); a value cannot itself hold one, or a line break.
 * @param {string} path @param {Record<string, string>} env
 */
async function writeEnvFile(path, env) {
  for (const [name, value] of Object.entries(env)) {
    if (/['\r\n]/.test(value)) throw new SetupError(`${name} must be one line without single quotes.`);
  }
  const lines = Object.entries(env).map(([name, value]) => `${name}='${value}'`);
  const text = `# Written by npm run setup. Secrets: keep this file private; check it with npm run doctor -- --env-file ${path}\n${lines.join('\n')}\n`;
  await writeFile(path, text, { mode: 0o600 });
  // writeFile's mode applies only to a new file.
  await chmod(path, 0o600);
}
