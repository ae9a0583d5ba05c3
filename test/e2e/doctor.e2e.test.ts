import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../dev/lib/ports.mjs';
import { DEMO_NOTES_TOKENS, DEMO_UPSTREAM_TOKEN } from '../../dev/stack.mjs';
import { startUpstream } from '../fixtures/upstream-server.mjs';

/** The notes upstream takes people's own tokens; here one of them serves as its shared token. */
const DEMO_NOTES_TOKEN = DEMO_NOTES_TOKENS[0] ?? '';

import { connectWithOAuth } from './support/mcp-client';
import { type E2EStack, need, startE2EStack } from './support/stack';

/**
 * Issue #11: `npm run setup` writes the settings the gateway then runs from, and `npm run doctor`
 * checks settings and a running gateway against the real stand-in Access and demo upstreams.
 */

const REPO = resolve(import.meta.dirname, '../..');
const PACKAGE = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

interface Run {
  code: number | null;
  lines: string[];
  output: string;
}

/** Runs an npm script's command (`npm run <script> -- args`) with the Node running the tests. */
function runScript(script: 'setup' | 'doctor', args: string[], env: Record<string, string> = {}): Promise<Run> {
  // The script's own node flags, from package.json: what `npm run` runs.
  const [, ...nodeArgs] = (PACKAGE.scripts[script] ?? '').split(' ');
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  return new Promise((done) => child.on('close', (code) => done({ code, output, lines: output.split('\n') })));
}

let stack: E2EStack | undefined;
let dir = '';
let setupRun: Run | undefined;
let prodVars: Record<string, string> = {};
let accessSecret = '';
let notHtmlServer: Server | undefined;
let websiteUrl = '';
/** The test upstream's real MCP servers of each kind (test/fixtures/upstream-kinds.mjs). */
let kinds: Awaited<ReturnType<typeof startUpstream>> | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-doctor-'));
  const out = join(dir, '.prod.vars');
  stack = await startE2EStack({
    // The gateway runs from the file `npm run setup` writes against the stand-ins.
    gatewayEnvFile: async ({ access, upstreamMcp, connectors }) => {
      accessSecret = access.clientSecret;
      const notes = connectors.find((c) => c.name === 'notes')?.upstreamUrl ?? '';
      setupRun = await runScript(
        'setup',
        [
          '--yes',
          '--out',
          out,
          '--access-url',
          access.issuer,
          '--client-id',
          access.clientId,
          '--allowed-emails',
          'alice@example.com,@example.org,group:writers',
          '--upstream-url',
          upstreamMcp,
          '--upstream',
          `notes=${notes}`,
        ],
        // Secrets through the environment, off the command line.
        { ACCESS_CLIENT_SECRET: access.clientSecret, UPSTREAM_TOKEN: DEMO_UPSTREAM_TOKEN, NOTES_TOKEN: DEMO_NOTES_TOKEN },
      );
      return out;
    },
  });
  prodVars = parseEnv(await readFile(out, 'utf8')) as Record<string, string>;
  notHtmlServer = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1>Welcome to our website</h1>'));
  await new Promise<void>((done) => need(notHtmlServer).listen(0, '127.0.0.1', done));
  const address = notHtmlServer.address();
  websiteUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/mcp`;
  kinds = await startUpstream();
});

afterAll(async () => {
  await stack?.stop();
  notHtmlServer?.close();
  await kinds?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The doctor on the setup's settings with some changed. */
async function doctorWith(changes: Record<string, string>): Promise<Run> {
  const file = join(dir, `variant-${Math.random().toString(36).slice(2)}.vars`);
  const vars = { ...prodVars, ...changes };
  await writeFile(
    file,
    Object.entries(vars)
      .map(([k, v]) => `${k}='${v}'`)
      .join('\n'),
    { mode: 0o600 },
  );
  return runScript('doctor', ['--env-file', file]);
}

const failed = (run: Run) => run.lines.filter((line) => line.startsWith('✗'));

function expectNoSecrets(run: Run) {
  for (const secret of [DEMO_UPSTREAM_TOKEN, DEMO_NOTES_TOKEN, accessSecret, prodVars.COOKIE_ENCRYPTION_KEY ?? 'unset']) {
    expect(run.output).not.toContain(secret);
  }
}

describe('npm run setup', () => {
  it('writes .prod.vars with mode 0600 from flags, checks it, and prints the deploy commands', async () => {
    const run = need(setupRun);
    expect(run.code, run.output).toBe(0);
    expect((await stat(join(dir, '.prod.vars'))).mode & 0o777).toBe(0o600);
    expect(prodVars.COOKIE_ENCRYPTION_KEY).toMatch(/^[0-9a-f]{64}$/);
    // A group: entry needs the groups scope, or it matches nobody.
    expect(prodVars.ALLOWED_EMAILS).toBe('alice@example.com,@example.org,group:writers');
    expect(prodVars.ACCESS_SCOPES).toBe('openid email profile groups');
    expect(JSON.parse(prodVars.UPSTREAMS ?? '{}')).toEqual({ notes: { url: expect.stringContaining('/notes/mcp'), token: 'NOTES_TOKEN' } });
    expect(failed(run)).toEqual([]);
    expect(run.output).toContain('npx wrangler deploy');
    expect(run.output).toContain('npx wrangler secret bulk');
    expectNoSecrets(run);
  });

  it('gives a gateway, started from that file, that completes a login with the SDK client', async () => {
    const { client } = await connectWithOAuth(need(stack).urls.mcp);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('list_boards');
    await client.close();
  });

  it('writes nothing and names each problem when an answer is unusable', async () => {
    const out = join(dir, 'bad.vars');
    const run = await runScript('setup', [
      '--yes',
      '--out',
      out,
      '--team',
      'not a team',
      '--client-id',
      'cid',
      '--client-secret',
      's',
      '--upstream-url',
      'ftp://x',
      '--upstream-token',
      't',
    ]);
    expect(run.code).toBe(1);
    expect(failed(run).map((line) => line.split(' ')[1])).toEqual(expect.arrayContaining(['ACCESS_TEAM_DOMAIN', 'UPSTREAM_URL']));
    await expect(stat(out)).rejects.toThrow();
  });
});

describe('npm run doctor -- --env-file', () => {
  it('passes a correct configuration, with one line per Access check and per upstream', async () => {
    const run = await runScript('doctor', ['--env-file', join(dir, '.prod.vars')]);
    expect(run.code, run.output).toBe(0);
    expect(failed(run)).toEqual([]);
    for (const check of [
      'configuration loads',
      'discovery document answers',
      'issuer matches',
      'ACCESS_TOKEN_URL matches',
      'JWKS holds 1 signing key',
      'invalid_grant',
    ]) {
      expect(
        run.lines.some((line) => line.startsWith('✓') && line.includes(check)),
        check,
      ).toBe(true);
    }
    // The demo kanban speaks 2026-07-28 (issue #18), picked with server/discover as the gateway does.
    expect(run.lines.find((line) => line.startsWith('✓ /mcp →'))).toMatch(/MCP 2026-07-28 works \(demo-kanban\), tools\/list returns \d+ tools/);
    // Issue #19: what Access's discovery says about re-validation, and what only a sign-in shows.
    expect(run.lines.find((line) => line.startsWith('· Access can issue refresh tokens'))).toMatch(
      /within one access-token lifetime \(ACCESS_TOKEN_TTL, .+\).*MAX_GRANT_AGE/,
    );
    expect(run.lines.some((line) => line.startsWith('· ') && /groups/.test(line) && /discovery/.test(line))).toBe(true);
    expect(run.lines.some((line) => line.startsWith('· what the doctor cannot know without a sign-in'))).toBe(true);
    expect(run.lines.find((line) => line.startsWith('✓ /notes/mcp →'))).toMatch(/tools\/list returns \d+ tools/);
    expectNoSecrets(run);
  });

  it.each([
    [
      'a wrong issuer',
      () => ({ ACCESS_ISSUER: `${prodVars.ACCESS_AUTHORIZATION_URL?.replace(/\/authorization$/, '')}-wrong` }),
      /^✗ Access says its issuer is .* — set ACCESS_ISSUER/,
    ],
    [
      'a JWKS URL that answers 404',
      () => ({ ACCESS_JWKS_URL: prodVars.ACCESS_JWKS_URL?.replace(/jwks$/, 'keys-gone') ?? '' }),
      /^✗ ACCESS_JWKS_URL .*: HTTP 404 — /,
    ],
    [
      'a wrong client secret',
      () => ({ ACCESS_CLIENT_SECRET: 'not-the-secret' }),
      /^✗ Access token endpoint refused the client ID or secret \(invalid_client\) — .*ACCESS_CLIENT_SECRET/,
    ],
    [
      'an upstream token the upstream refuses',
      () => ({ UPSTREAM_TOKEN: 'refused-token' }),
      /^✗ \/mcp → .* refused the token \(HTTP 401\) — renew UPSTREAM_TOKEN/,
    ],
    [
      'an upstream that is down',
      () => ({ UPSTREAM_URL: `http://127.0.0.1:${downPort}/mcp` }),
      /^✗ \/mcp → .* is unreachable: connection refused .* — check UPSTREAM_URL/,
    ],
    [
      'an upstream that is not an MCP server',
      () => ({ UPSTREAM_URL: websiteUrl }),
      /^✗ \/mcp → .* did not answer initialize as an MCP server \(HTTP 200, text\/html\) — UPSTREAM_URL must be/,
    ],
  ])('fails %s with its own line and fix', async (_name, changes, line) => {
    const run = await doctorWith(changes());
    expect(run.code, run.output).toBe(1);
    expect(
      failed(run).some((l) => line.test(l)),
      run.output,
    ).toBe(true);
    expectNoSecrets(run);
  });

  it.each([
    ['sessions', '2025-11-25 works (kinds-v1-sessions)'],
    ['both', '2026-07-28 works (kinds-v2)'],
    ['modern', '2026-07-28 works (kinds-v2)'],
  ])('checks a %s upstream in the revision it speaks (issue #18)', async (kind, works) => {
    const url = `${need(kinds).origin}/kinds/${kind}/mcp?accept=kinds-token`;
    const run = await doctorWith({ UPSTREAM_URL: url, UPSTREAM_TOKEN: 'kinds-token' });
    expect(
      run.lines.find((line) => line.startsWith('✓ /mcp →')),
      run.output,
    ).toContain(`MCP ${works}, tools/list returns 3 tools`);
    const refused = await doctorWith({ UPSTREAM_URL: url, UPSTREAM_TOKEN: 'refused-token' });
    expect(failed(refused)).toContainEqual(expect.stringMatching(/^✗ \/mcp → .* refused the token \(HTTP 401\) — renew UPSTREAM_TOKEN/));
  });

  it('fails a refused token on a 2026-07-28 upstream that answers server/discover without one', async () => {
    const url = `${need(kinds).origin}/kinds/modern/mcp?accept=kinds-token&discover=public`;
    const run = await doctorWith({ UPSTREAM_URL: url, UPSTREAM_TOKEN: 'refused-token' });
    expect(failed(run)).toContainEqual(expect.stringMatching(/^✗ \/mcp → .* refused the token \(HTTP 401\) — renew UPSTREAM_TOKEN/));
  });

  it('fails a refused token on one named upstream only, naming that upstream', async () => {
    const run = await doctorWith({ NOTES_TOKEN: 'refused-token' });
    expect(failed(run)).toEqual([expect.stringMatching(/^✗ \/notes\/mcp → .* refused the token \(HTTP 401\) — renew the secret UPSTREAMS.notes.token names/)]);
  });

  it('fails the placeholder values of .dev.vars.example, one line each', async () => {
    const run = await runScript('doctor', ['--env-file', '.dev.vars.example']);
    expect(run.code).toBe(1);
    const variables = failed(run).map((line) => line.split(' ')[1]);
    expect(variables.sort()).toEqual([
      'ACCESS_CLIENT_ID',
      'ACCESS_CLIENT_SECRET',
      'ACCESS_TEAM_DOMAIN',
      'COOKIE_ENCRYPTION_KEY',
      'UPSTREAM_TOKEN',
      'UPSTREAM_URL',
    ]);
    expect(failed(run).every((line) => line.includes('.dev.vars.example'))).toBe(true);
  });
});

describe('npm run doctor -- --url', () => {
  it('passes a running gateway and names the redirect URL the Access app needs', async () => {
    const { urls } = need(stack);
    const run = await runScript('doctor', ['--url', urls.gateway]);
    expect(run.code, run.output).toBe(0);
    expect(failed(run)).toEqual([]);
    expect(run.lines.some((line) => line.startsWith('✓') && line.includes('/health answers ok'))).toBe(true);
    expect(run.lines.some((line) => line.startsWith('✓ RFC 8414 metadata'))).toBe(true);
    for (const path of ['/mcp', '/notes/mcp']) {
      expect(run.lines).toContainEqual(expect.stringMatching(new RegExp(`^✓ ${urls.gateway}${path} answers 401`)));
    }
    expect(run.output).toContain(`${urls.gateway}/callback`);
  });

  it('fails a host that is not the gateway', async () => {
    const run = await runScript('doctor', ['--url', new URL(websiteUrl).origin]);
    expect(run.code).toBe(1);
    expect(failed(run)[0]).toMatch(/\/health answered HTTP 200, not this gateway's health check — /);
  });
});

let downPort = 0;
beforeAll(async () => {
  downPort = await findFreePort();
});
