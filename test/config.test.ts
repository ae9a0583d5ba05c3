import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';

const valid = {
  ACCESS_CLIENT_ID: 'cid',
  ACCESS_CLIENT_SECRET: 'csecret',
  ACCESS_AUTHORIZATION_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/cid/authorization',
  ACCESS_TOKEN_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/cid/token',
  ACCESS_JWKS_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/cid/jwks',
  COOKIE_ENCRYPTION_KEY: 'k'.repeat(32),
  UPSTREAM_URL: 'https://mcp.example.com/mcp',
  UPSTREAM_TOKEN: 'pat_SECRET_value',
};

/** The problems loadConfig reports for this environment, or [] when it loads. */
function problems(env: Record<string, unknown>): Array<{ variable: string; message: string }> {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [...error.problems];
  }
}

const variables = (env: Record<string, unknown>) => problems(env).map((p) => p.variable);

describe('configuration', () => {
  it('loads a complete environment with documented defaults', () => {
    const config = loadConfig(valid);
    expect(config.access.issuer).toBe('https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/cid');
    expect(config.accessTokenTtl).toBe(86_400);
    expect(config.refreshTokenTtl).toBe(2_592_000);
    expect(config.upstreams[0]?.authHeader).toBe('Authorization');
    expect(config.upstreams[0]?.authScheme).toBe('Bearer');
    expect(config.upstreams[0]?.timeoutMs).toBe(30_000);
    expect(config.allowedEmails).toBeUndefined();
    expect(config.access.allowInsecureRequests).toBe(false);
  });

  it('names every missing required variable at once', () => {
    expect(variables({}).sort()).toEqual(
      [
        'ACCESS_AUTHORIZATION_URL',
        'ACCESS_CLIENT_ID',
        'ACCESS_CLIENT_SECRET',
        'ACCESS_JWKS_URL',
        'ACCESS_TOKEN_URL',
        'COOKIE_ENCRYPTION_KEY',
        'UPSTREAM_TOKEN',
        'UPSTREAM_URL',
      ].sort(),
    );
    expect(problems({}).every((p) => p.message.length > 10)).toBe(true);
  });

  it('never repeats a value in its messages', () => {
    const secret = 'ghp_TOPSECRET_1234';
    const found = problems({
      ...valid,
      USER_TOKENS: `{"a@b.c": ${secret}`,
      UPSTREAM_HEADERS: secret,
      COOKIE_ENCRYPTION_KEY: secret,
      ACCESS_TOKEN_URL: `http://${secret}.example/token`,
    });
    expect(found.map((p) => p.variable).sort()).toEqual(['ACCESS_TOKEN_URL', 'COOKIE_ENCRYPTION_KEY', 'UPSTREAM_HEADERS', 'USER_TOKENS']);
    expect(JSON.stringify(found)).not.toContain('TOPSECRET');
  });

  it('requires https URLs, allowing http only on loopback', () => {
    expect(variables({ ...valid, UPSTREAM_URL: 'http://mcp.example.com/mcp' })).toEqual(['UPSTREAM_URL']);
    expect(variables({ ...valid, UPSTREAM_URL: 'not a url' })).toEqual(['UPSTREAM_URL']);
    expect(variables({ ...valid, UPSTREAM_URL: 'https://user:pass@mcp.example.com/' })).toEqual(['UPSTREAM_URL']);
    const local = loadConfig({ ...valid, ACCESS_TOKEN_URL: 'http://127.0.0.1:9000/token', UPSTREAM_URL: 'http://localhost:8788/mcp' });
    expect(local.access.allowInsecureRequests).toBe(true);
  });

  it('keeps an explicit ACCESS_ISSUER exactly as written', () => {
    expect(loadConfig({ ...valid, ACCESS_ISSUER: 'https://issuer.example' }).access.issuer).toBe('https://issuer.example');
  });

  it('bounds lifetimes and timeouts to whole numbers of seconds', () => {
    expect(variables({ ...valid, ACCESS_TOKEN_TTL: '59' })).toEqual(['ACCESS_TOKEN_TTL']);
    expect(variables({ ...valid, ACCESS_TOKEN_TTL: '1.5' })).toEqual(['ACCESS_TOKEN_TTL']);
    expect(variables({ ...valid, REFRESH_TOKEN_TTL: '-1' })).toEqual(['REFRESH_TOKEN_TTL']);
    expect(variables({ ...valid, UPSTREAM_TIMEOUT: '0' })).toEqual(['UPSTREAM_TIMEOUT']);
    expect(loadConfig({ ...valid, ACCESS_TOKEN_TTL: '3600', UPSTREAM_TIMEOUT: '5' })).toMatchObject({ accessTokenTtl: 3600, upstreams: [{ timeoutMs: 5000 }] });
  });

  describe('issue #16: MAX_GRANT_AGE', () => {
    it('is 30 days by default, and takes whole seconds from an hour to a year', () => {
      expect(loadConfig(valid).maxGrantAge).toBe(2_592_000);
      expect(loadConfig({ ...valid, MAX_GRANT_AGE: '3600' }).maxGrantAge).toBe(3600);
      expect(loadConfig({ ...valid, MAX_GRANT_AGE: ' 31536000 ' }).maxGrantAge).toBe(31_536_000);
    });

    it('refuses anything else as a configuration error naming the variable', () => {
      for (const bad of ['3599', '31536001', '30d', '1.5', '-3600', 'forever', '0']) {
        const found = problems({ ...valid, MAX_GRANT_AGE: bad });
        expect(
          found.map((p) => p.variable),
          bad,
        ).toEqual(['MAX_GRANT_AGE']);
        expect(found[0]?.message).toMatch(/whole number of seconds from 3600 to 31536000/);
      }
    });
  });

  it('requires at least 32 characters of cookie key', () => {
    expect(variables({ ...valid, COOKIE_ENCRYPTION_KEY: 'x'.repeat(31) })).toEqual(['COOKIE_ENCRYPTION_KEY']);
  });

  it('parses ALLOWED_EMAILS into lowercased emails and domains', () => {
    const { allowedEmails } = loadConfig({ ...valid, ALLOWED_EMAILS: ' Alice@Example.com , @Example.ORG,' });
    expect([...(allowedEmails?.emails ?? [])]).toEqual(['alice@example.com']);
    expect([...(allowedEmails?.domains ?? [])]).toEqual(['example.org']);
    expect(variables({ ...valid, ALLOWED_EMAILS: 'alice' })).toEqual(['ALLOWED_EMAILS']);
    expect(variables({ ...valid, ALLOWED_EMAILS: ' , ' })).toEqual(['ALLOWED_EMAILS']);
  });

  it('needs no UPSTREAM_TOKEN when every listed user has their own', () => {
    const env = { ...valid, UPSTREAM_TOKEN: undefined, ALLOWED_EMAILS: 'a@x.com', USER_TOKENS: '{"A@x.com":"pat_a"}' };
    expect(loadConfig(env).upstreams[0]?.userTokens.get('a@x.com')).toBe('pat_a');
    expect(variables({ ...env, ALLOWED_EMAILS: 'a@x.com,b@x.com' })).toEqual(['UPSTREAM_TOKEN']);
    expect(variables({ ...env, USER_TOKENS: '{}' })).toEqual(['UPSTREAM_TOKEN']);
  });

  it('validates the upstream header settings', () => {
    expect(variables({ ...valid, UPSTREAM_AUTH_HEADER: 'X API Key' })).toEqual(['UPSTREAM_AUTH_HEADER']);
    expect(variables({ ...valid, UPSTREAM_AUTH_SCHEME: 'two words' })).toEqual(['UPSTREAM_AUTH_SCHEME']);
    expect(variables({ ...valid, UPSTREAM_HEADERS: '{"X-A":"1\\r\\nX-B: 2"}' })).toEqual(['UPSTREAM_HEADERS']);
    expect(variables({ ...valid, UPSTREAM_HEADERS: '[]' })).toEqual(['UPSTREAM_HEADERS']);
    const config = loadConfig({ ...valid, UPSTREAM_AUTH_HEADER: 'X-API-Key', UPSTREAM_AUTH_SCHEME: '', UPSTREAM_HEADERS: '{"X-Readonly":"true"}' });
    expect(config.upstreams[0]).toMatchObject({ authHeader: 'X-API-Key', authScheme: '', headers: [['X-Readonly', 'true']] });
  });
});

describe('configuration: UPSTREAMS', () => {
  const github = { url: 'https://api.githubcopilot.com/mcp/', token: 'GITHUB_TOKEN', title: 'GitHub' };
  const several = { ...valid, UPSTREAMS: JSON.stringify({ github }), GITHUB_TOKEN: 'ghp_SECRET_github' };
  const withUpstream = (settings: unknown, extra: Record<string, unknown> = {}) => ({ ...several, UPSTREAMS: JSON.stringify({ github: settings }), ...extra });

  it('serves each named upstream at /<name>/mcp beside the single /mcp', () => {
    const config = loadConfig(several);
    expect(config.upstreams.map((u) => [u.name, u.path, u.url.href])).toEqual([
      ['mcp', '/mcp', 'https://mcp.example.com/mcp'],
      ['github', '/github/mcp', 'https://api.githubcopilot.com/mcp/'],
    ]);
    expect(config.upstreams[1]).toMatchObject({
      title: 'GitHub',
      token: 'ghp_SECRET_github',
      authHeader: 'Authorization',
      authScheme: 'Bearer',
      timeoutMs: 30_000,
    });
  });

  it('takes UPSTREAMS as a JSON object from wrangler.jsonc vars as well as a JSON string', () => {
    const config = loadConfig({ ...several, UPSTREAMS: { github: { ...github, timeout: 5, headers: { 'X-MCP-Toolsets': 'repos' } } } });
    expect(config.upstreams[1]).toMatchObject({ timeoutMs: 5000, headers: [['X-MCP-Toolsets', 'repos']] });
  });

  it('needs no single upstream when UPSTREAMS is set, and refuses stray single-upstream variables', () => {
    const named = { ...several, UPSTREAM_URL: undefined, UPSTREAM_TOKEN: undefined };
    expect(loadConfig(named).upstreams.map((u) => u.name)).toEqual(['github']);
    expect(variables({ ...named, UPSTREAM_TOKEN: 'pat' })).toEqual(['UPSTREAM_TOKEN']);
    expect(variables({ ...named, UPSTREAMS: '{}' })).toEqual(['UPSTREAMS']);
    expect(variables({ ...named, UPSTREAMS: '[1]' })).toEqual(['UPSTREAMS']);
  });

  it.each(['mcp', 'health', 'connections', 'authorize', 'GitHub', 'a_b', '.well-known', '', 'x'.repeat(33)])('refuses the upstream name %j', (name) => {
    expect(variables({ ...several, UPSTREAMS: JSON.stringify({ [name]: github }) })).toEqual([`UPSTREAMS.${name}`]);
  });

  it.each([
    ['url', { ...github, url: undefined }],
    ['url', { ...github, url: 'http://mcp.example.com/mcp' }],
    ['title', { ...github, title: 'x'.repeat(81) }],
    ['authHeader', { ...github, authHeader: 'X API' }],
    ['authScheme', { ...github, authScheme: 'two words' }],
    ['headers', { ...github, headers: { 'X-A': 1 } }],
    ['timeout', { ...github, timeout: 601 }],
    ['timeout', { ...github, timeout: 'soon' }],
    ['allowedEmails', { ...github, allowedEmails: 'not-an-email' }],
    ['surprise', { ...github, surprise: true }],
    ['token', { ...github, token: 'ghp-not/a-name' }],
    ['token', { ...github, token: 'COOKIE_ENCRYPTION_KEY' }],
    ['token', { ...github, token: 'ACCESS_CLIENT_SECRET' }],
  ])('names the upstream and the field when %s is wrong', (field, settings) => {
    expect(variables(withUpstream(settings))).toEqual([`UPSTREAMS.github.${field}`]);
  });

  it('says so when token names a variable that is not set, without printing what it names', () => {
    const found = problems(withUpstream({ ...github, token: 'ghp_PASTED_BY_MISTAKE' }));
    expect(found.map((p) => p.variable)).toEqual(['UPSTREAMS.github.token']);
    expect(found[0]?.message).toContain('not set');
    expect(JSON.stringify(found)).not.toContain('PASTED');
  });

  it("reads people's own tokens from the variable userTokens names, and requires a token for everyone else", () => {
    const own = { url: github.url, userTokens: 'GITHUB_USER_TOKENS' };
    const env = withUpstream(own, { GITHUB_USER_TOKENS: '{"Alice@x.com":"ghp_alice"}', ALLOWED_EMAILS: 'alice@x.com' });
    expect(loadConfig(env).upstreams[1]?.userTokens.get('alice@x.com')).toBe('ghp_alice');
    expect(variables({ ...env, ALLOWED_EMAILS: 'alice@x.com,bob@x.com' })).toEqual(['UPSTREAMS.github.token']);
    // An upstream's own allowedEmails is the list that must be covered.
    expect(
      variables(withUpstream({ ...own, allowedEmails: 'alice@x.com' }, { GITHUB_USER_TOKENS: '{"alice@x.com":"ghp_alice"}', ALLOWED_EMAILS: '@x.com' })),
    ).toEqual([]);
    expect(variables(withUpstream(own, { GITHUB_USER_TOKENS: 'ghp_SECRET_not_json' }))).toEqual(['UPSTREAMS.github.userTokens', 'UPSTREAMS.github.token']);
    expect(JSON.stringify(problems(withUpstream(own, { GITHUB_USER_TOKENS: 'ghp_SECRET_not_json' })))).not.toContain('SECRET');
    expect(variables(withUpstream({ url: github.url }))).toEqual(['UPSTREAMS.github.token']);
  });

  it('parses allowedEmails as a comma list or an array', () => {
    const config = loadConfig(withUpstream({ ...github, allowedEmails: ['Alice@X.com', '@y.org'] }));
    expect([...(config.upstreams[1]?.allowedEmails?.emails ?? [])]).toEqual(['alice@x.com']);
    expect([...(config.upstreams[1]?.allowedEmails?.domains ?? [])]).toEqual(['y.org']);
  });
});

describe("configuration: people's own tokens", () => {
  const notes = { url: 'https://notes.example/mcp', userSupplied: true };
  const env = { ...valid, UPSTREAMS: JSON.stringify({ notes }), TOKEN_ENCRYPTION_KEY: 't'.repeat(32) };

  it('needs no shared token for a userSupplied upstream, but a TOKEN_ENCRYPTION_KEY of 32+ characters', () => {
    expect(loadConfig(env).upstreams[1]).toMatchObject({ userSupplied: true, token: undefined });
    expect(variables({ ...env, TOKEN_ENCRYPTION_KEY: undefined })).toEqual(['TOKEN_ENCRYPTION_KEY']);
    expect(variables({ ...env, TOKEN_ENCRYPTION_KEY: 'short' })).toEqual(['TOKEN_ENCRYPTION_KEY']);
    expect(variables({ ...env, TOKEN_ENCRYPTION_KEY_PREVIOUS: 'short' })).toEqual(['TOKEN_ENCRYPTION_KEY_PREVIOUS']);
    expect(loadConfig({ ...env, TOKEN_ENCRYPTION_KEY_PREVIOUS: 'p'.repeat(32) }).tokenKeys).toEqual(['t'.repeat(32), 'p'.repeat(32)]);
  });

  it('validates userSupplied, tokenHelp and ADMIN_EMAILS', () => {
    expect(variables({ ...env, UPSTREAMS: JSON.stringify({ notes: { ...notes, userSupplied: 'yes' } }) })).toEqual([
      'UPSTREAMS.notes.userSupplied',
      'UPSTREAMS.notes.token',
    ]);
    expect(variables({ ...env, UPSTREAMS: JSON.stringify({ notes: { ...notes, tokenHelp: 'http://example.com/tokens' } }) })).toEqual([
      'UPSTREAMS.notes.tokenHelp',
    ]);
    expect(
      loadConfig({ ...env, UPSTREAMS: JSON.stringify({ notes: { ...notes, tokenHelp: 'https://example.com/tokens' } }) }).upstreams[1]?.tokenHelp?.href,
    ).toBe('https://example.com/tokens');
    expect(variables({ ...env, ADMIN_EMAILS: 'not-an-email' })).toEqual(['ADMIN_EMAILS']);
    expect(
      loadConfig({ ...valid, UPSTREAM_USER_SUPPLIED: 'true', UPSTREAM_TOKEN: undefined, TOKEN_ENCRYPTION_KEY: 't'.repeat(32) }).upstreams[0]?.userSupplied,
    ).toBe(true);
  });
});

describe('issue #11: ACCESS_TEAM_DOMAIN and example values', () => {
  const { ACCESS_AUTHORIZATION_URL: _a, ACCESS_TOKEN_URL: _t, ACCESS_JWKS_URL: _j, ...withoutUrls } = valid;
  const base = 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/cid';

  it.each(['team', 'team.cloudflareaccess.com', 'https://team.cloudflareaccess.com', 'https://Team.cloudflareaccess.com/'])(
    'derives the three Access URLs and the issuer from the team domain %s and the client ID',
    (team) => {
      const { access } = loadConfig({ ...withoutUrls, ACCESS_TEAM_DOMAIN: team });
      expect(access.authorizationUrl).toBe(`${base}/authorization`);
      expect(access.tokenUrl).toBe(`${base}/token`);
      expect(access.jwksUrl).toBe(`${base}/jwks`);
      expect(access.issuer).toBe(base);
      expect(access.allowInsecureRequests).toBe(false);
    },
  );

  it('lets an explicit Access URL win over the team domain', () => {
    const jwks = 'https://other.example.com/keys';
    const { access } = loadConfig({ ...withoutUrls, ACCESS_TEAM_DOMAIN: 'team', ACCESS_JWKS_URL: jwks });
    expect(access.jwksUrl).toBe(jwks);
    expect(access.tokenUrl).toBe(`${base}/token`);
  });

  it('refuses a team domain that is not a team name, without repeating it', () => {
    for (const team of ['http://team.cloudflareaccess.com', 'team.example.com', 'te am', 'https://team.cloudflareaccess.com/cdn-cgi']) {
      const found = problems({ ...withoutUrls, ACCESS_TEAM_DOMAIN: team });
      expect(found.map((p) => p.variable)).toContain('ACCESS_TEAM_DOMAIN');
      expect(found.every((p) => !p.message.includes(team))).toBe(true);
      expect(found.map((p) => p.variable)).toEqual(['ACCESS_TEAM_DOMAIN']);
    }
  });

  it('asks only for the client ID when the team domain is set without one', () => {
    const { ACCESS_CLIENT_ID: _c, ...env } = withoutUrls;
    expect(variables({ ...env, ACCESS_TEAM_DOMAIN: 'team' })).toEqual(['ACCESS_CLIENT_ID']);
  });

  it('names the team domain as the alternative when the Access URLs are missing', () => {
    const found = problems(withoutUrls);
    expect(found.map((p) => p.variable).sort()).toEqual(['ACCESS_AUTHORIZATION_URL', 'ACCESS_JWKS_URL', 'ACCESS_TOKEN_URL']);
    expect(found.every((p) => p.message.includes('ACCESS_TEAM_DOMAIN'))).toBe(true);
  });

  it('refuses every value still copied from .dev.vars.example', () => {
    const example = {
      ACCESS_CLIENT_ID: 'replace-with-access-client-id',
      ACCESS_CLIENT_SECRET: 'replace-with-access-client-secret',
      ACCESS_AUTHORIZATION_URL: 'https://your-team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/replace-with-access-client-id/authorization',
      ACCESS_TOKEN_URL: 'https://your-team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/replace-with-access-client-id/token',
      ACCESS_JWKS_URL: 'https://your-team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/abc/jwks',
      COOKIE_ENCRYPTION_KEY: 'replace-with-at-least-32-random-characters',
      UPSTREAM_URL: 'https://mcp.example.com/mcp',
      UPSTREAM_TOKEN: 'replace-with-upstream-pat',
    };
    const found = problems(example);
    expect(found.map((p) => p.variable).sort()).toEqual(
      [
        'ACCESS_AUTHORIZATION_URL',
        'ACCESS_CLIENT_ID',
        'ACCESS_CLIENT_SECRET',
        'ACCESS_JWKS_URL',
        'ACCESS_TOKEN_URL',
        'COOKIE_ENCRYPTION_KEY',
        'UPSTREAM_TOKEN',
      ].sort(),
    );
    expect(found.every((p) => p.message.includes('.dev.vars.example'))).toBe(true);
    expect(variables({ ...valid, ACCESS_TEAM_DOMAIN: 'your-team' })).toEqual(['ACCESS_TEAM_DOMAIN']);
    // As copied: the team and client ID are named, not the URLs derived from them.
    expect(variables({ ...withoutUrls, ACCESS_TEAM_DOMAIN: 'your-team', ACCESS_CLIENT_ID: 'replace-with-access-client-id' }).sort()).toEqual([
      'ACCESS_CLIENT_ID',
      'ACCESS_TEAM_DOMAIN',
    ]);
    expect(variables({ ...valid, UPSTREAMS: JSON.stringify({ gh: { url: 'https://replace-with-host/mcp', token: 'UPSTREAM_TOKEN' } }) })).toContain(
      'UPSTREAMS.gh.url',
    );
  });

  it('keeps real values that merely look alike', () => {
    expect(variables({ ...withoutUrls, ACCESS_TEAM_DOMAIN: 'your-teams' })).toEqual([]);
    expect(variables({ ...valid, UPSTREAM_TOKEN: 'ghp_replace_with_nothing' })).toEqual([]);
  });
});

describe('issue #11: example values in the secrets UPSTREAMS names', () => {
  it('names the secret that still holds an example value', () => {
    const env = { ...valid, UPSTREAMS: JSON.stringify({ github: { url: 'https://api.githubcopilot.com/mcp/', token: 'GITHUB_TOKEN' } }) };
    expect(variables({ ...env, GITHUB_TOKEN: 'replace-with-github-pat' })).toEqual(['GITHUB_TOKEN']);
    expect(variables({ ...env, GITHUB_TOKEN: 'github_pat_real' })).toEqual([]);
  });
});

describe('configuration: audit.arguments (issue #20)', () => {
  const notes = (audit: unknown) => ({ ...valid, UPSTREAMS: JSON.stringify({ notes: { url: 'https://notes.example/mcp', token: 'UPSTREAM_TOKEN', audit } }) });

  it('keeps no arguments unless an upstream opts in, per upstream', () => {
    const config = loadConfig({ ...notes({ arguments: 'full' }), UPSTREAM_AUDIT: '{"arguments":"keys"}' });
    expect(config.upstreams.map((u) => [u.name, u.audit.arguments])).toEqual([
      ['mcp', 'keys'],
      ['notes', 'full'],
    ]);
    expect(loadConfig(valid).upstreams[0]?.audit).toEqual({ arguments: 'none' });
    expect(loadConfig({ ...valid, UPSTREAM_AUDIT: { arguments: 'none' } }).upstreams[0]?.audit).toEqual({ arguments: 'none' });
  });

  it.each([
    [{ UPSTREAM_AUDIT: '{"arguments":"all"}' }, 'UPSTREAM_AUDIT.arguments'],
    [{ UPSTREAM_AUDIT: '{"args":"keys"}' }, 'UPSTREAM_AUDIT.args'],
    [{ UPSTREAM_AUDIT: '"keys"' }, 'UPSTREAM_AUDIT'],
    [{ UPSTREAMS: JSON.parse(notes({ arguments: true }).UPSTREAMS) }, 'UPSTREAMS.notes.audit.arguments'],
    [{ UPSTREAMS: JSON.parse(notes('keys').UPSTREAMS) }, 'UPSTREAMS.notes.audit'],
  ])('refuses %j, naming %s', (variables_, field) => {
    expect(variables({ ...valid, ...variables_ })).toEqual([field]);
  });
});

describe('issue #21: configuration: AGGREGATES', () => {
  const github = { url: 'https://api.githubcopilot.com/mcp/', token: 'GITHUB_TOKEN', title: 'GitHub' };
  const linear = { url: 'https://mcp.linear.app/mcp', token: 'LINEAR_TOKEN' };
  const notes = { url: 'https://notes.example/mcp', userSupplied: true };
  const base = { ...valid, UPSTREAMS: JSON.stringify({ github, linear }), GITHUB_TOKEN: 'ghp_SECRET_github', LINEAR_TOKEN: 'lin_SECRET_linear' };
  const withAggregates = (aggregates: unknown, extra: Record<string, unknown> = {}) => ({ ...base, AGGREGATES: JSON.stringify(aggregates), ...extra });
  const problemsOf = (aggregates: unknown, extra: Record<string, unknown> = {}) =>
    problems(withAggregates(aggregates, extra)).map((p) => `${p.variable}: ${p.message}`);

  it('serves each aggregate at /<name>/mcp over the upstreams it names, in their order', () => {
    const config = loadConfig(withAggregates({ work: { title: 'Work tools', upstreams: ['linear', 'github'] }, plain: { upstreams: ['github'] } }));
    expect(config.aggregates.map((a) => [a.name, a.title, a.path, a.upstreams.map((u) => u.name)])).toEqual([
      ['work', 'Work tools', '/work/mcp', ['linear', 'github']],
      ['plain', undefined, '/plain/mcp', ['github']],
    ]);
    expect(config.aggregates[0]?.upstreams[1]).toBe(config.upstreams[1]);
  });

  it('takes AGGREGATES as a JSON object from wrangler.jsonc vars, and has none when unset', () => {
    expect(loadConfig({ ...base, AGGREGATES: { work: { upstreams: ['github'] } } }).aggregates.map((a) => a.name)).toEqual(['work']);
    expect(loadConfig(base).aggregates).toEqual([]);
  });

  it('names the entry of an upstream that is not in UPSTREAMS', () => {
    expect(problemsOf({ work: { upstreams: ['github', 'linaer'] } })).toEqual(['AGGREGATES.work.upstreams[1]: "linaer" is not an upstream in UPSTREAMS']);
  });

  it.each([
    ['an aggregate inside an aggregate', { a: { upstreams: ['github'] }, b: { upstreams: ['github', 'a'] } }, 'AGGREGATES.b.upstreams[1]', 'is an aggregate'],
    ['a duplicate upstream', { work: { upstreams: ['github', 'linear', 'github'] } }, 'AGGREGATES.work.upstreams[2]', 'listed twice'],
    ['the single /mcp upstream', { work: { upstreams: ['mcp', 'github'] } }, 'AGGREGATES.work.upstreams[0]', 'single upstream'],
    ['an entry that is not a name', { work: { upstreams: ['github', 7] } }, 'AGGREGATES.work.upstreams[1]', 'name of an upstream'],
    ['an empty list', { work: { upstreams: [] } }, 'AGGREGATES.work.upstreams', 'must list'],
    ['a missing list', { work: { title: 'Work' } }, 'AGGREGATES.work.upstreams', 'must list'],
    ['an unknown key', { work: { upstreams: ['github'], tools: {} } }, 'AGGREGATES.work.tools', 'is not a setting: use title, upstreams'],
    ['a title of two lines', { work: { upstreams: ['github'], title: 'Work\ntools' } }, 'AGGREGATES.work.title', 'one line'],
    ['settings that are not an object', { work: ['github'] }, 'AGGREGATES.work', 'must be an object'],
    ['a name with _', { work_tools: { upstreams: ['github'] } }, 'AGGREGATES.work_tools', 'no _'],
    ['a reserved name', { connections: { upstreams: ['github'] } }, 'AGGREGATES.connections', 'not a usable name'],
  ])('refuses %s, naming the field', (_what, aggregates, variable, message) => {
    const found = problems(withAggregates(aggregates));
    expect(found.map((p) => p.variable)).toEqual([variable]);
    expect(found[0]?.message).toContain(message);
  });

  it('refuses a name that UPSTREAMS already uses, naming both', () => {
    const [problem, ...rest] = problems(withAggregates({ github: { upstreams: ['linear'] } }));
    expect(rest).toEqual([]);
    expect(problem?.variable).toBe('AGGREGATES.github');
    expect(problem?.message).toContain('UPSTREAMS.github');
  });

  it('refuses AGGREGATES that is not a JSON object, without quoting it', () => {
    const found = problems({ ...base, AGGREGATES: '{"work": ghp_SECRET' });
    expect(found.map((p) => p.variable)).toEqual(['AGGREGATES']);
    expect(JSON.stringify(found)).not.toContain('SECRET');
  });

  it('adds no second problem for an upstream that failed to load itself', () => {
    const env = { ...withAggregates({ work: { upstreams: ['github', 'linear'] } }), LINEAR_TOKEN: undefined };
    expect(variables(env)).toEqual(['UPSTREAMS.linear.token']);
  });

  it('still needs TOKEN_ENCRYPTION_KEY when an aggregate reaches a userSupplied upstream', () => {
    const env = { ...withAggregates({ work: { upstreams: ['github', 'notes'] } }), UPSTREAMS: JSON.stringify({ github, notes }) };
    expect(variables(env)).toEqual(['TOKEN_ENCRYPTION_KEY']);
    expect(loadConfig({ ...env, TOKEN_ENCRYPTION_KEY: 't'.repeat(32) }).aggregates[0]?.upstreams.map((u) => u.userSupplied)).toEqual([false, true]);
  });
});
