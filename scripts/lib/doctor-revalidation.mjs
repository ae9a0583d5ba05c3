// @ts-check
/**
 * What the Access discovery document tells about re-validation (issue #19) without anyone signing
 * in: whether Access can issue refresh tokens (`grant_types_supported`) and send IdP groups
 * (`scopes_supported`), and what each means for how long a removal takes. Whether this app has
 * refresh tokens turned on, and which groups a person has, only a sign-in shows: the doctor says so.
 */

/** @typedef {import('./worker-config.mjs').Config} Config */

/**
 * @param {Record<string, unknown>} document  the Access app's `/.well-known/openid-configuration`
 * @param {Config} config @param {{ note: (what: string) => void }} report @param {string} accessApp
 */
export function reportRevalidation(document, config, report, accessApp) {
  const grantTypes = stringList(document.grant_types_supported);
  const scopes = stringList(document.scopes_supported);
  const ttl = duration(config.accessTokenTtl);
  const maxAge = duration(config.maxGrantAge);

  if (grantTypes?.includes('refresh_token')) {
    report.note(
      `Access can issue refresh tokens (its discovery lists refresh_token): if "Refresh tokens" is on in ${accessApp}, ` +
        `every refresh of the gateway's tokens asks Access again, so a person removed in Access or the IdP loses access ` +
        `within one access-token lifetime (ACCESS_TOKEN_TTL, ${ttl}) of the next refresh; if it is off, within MAX_GRANT_AGE (${maxAge})`,
    );
  } else {
    report.note(
      `Access's discovery ${grantTypes ? 'does not list' : 'says nothing of'} refresh_token among grant_types_supported: ` +
        `without Access refresh tokens the gateway cannot ask Access again, so a person removed in Access or the IdP ` +
        `keeps access until MAX_GRANT_AGE (${maxAge}) after their sign-in`,
    );
  }
  if (scopes?.includes('groups')) {
    report.note(
      'Access can send IdP groups (its discovery lists the groups scope): the gateway reads the `groups` claim of the ID token when it asks for that scope',
    );
  } else {
    report.note(
      `Access's discovery ${scopes ? 'does not list' : 'says nothing of'} a groups scope: rules naming group:<name> match nobody unless the ID token carries a groups claim`,
    );
  }
  report.note(
    'what the doctor cannot know without a sign-in: whether this Access app has refresh tokens turned on, and which groups the IdP sends for a person (sign in at /connections to see yours)',
  );
}

/** @param {unknown} value @returns {string[] | undefined} */
function stringList(value) {
  return Array.isArray(value) ? value.filter((item) => typeof item === 'string') : undefined;
}

/** Seconds in the largest whole unit that fits. @param {number} seconds */
export function duration(seconds) {
  for (const [unit, size] of /** @type {const} */ ([
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
  ])) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size} ${unit}${seconds === size ? '' : 's'}`;
  }
  return `${seconds} s`;
}
