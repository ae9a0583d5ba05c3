/**
 * /connections: GET shows the page (signing in through Access first); POST carries one action,
 * each CSRF-protected (same-site Origin and a session-bound field): replace or delete a token,
 * disconnect an app, sign out. A person acts on their own connections only; an admin
 * (ADMIN_EMAILS) on anyone's. Every change is logged once, with who did it (`actor`) to whom (`subject`).
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { emit } from '../audit';
import { type Config, serverName, type UpstreamConfig } from '../config';
import type { BrowserLeg } from '../context';
import { isCrossSitePost } from '../lib';
import { vetPastedToken } from '../own-token';
import { PageError } from '../pages';
import { isAllowedEmail, type Person } from '../permissions';
import { redirectToAccess } from '../sign-in';
import { takesOwnTokens } from '../upstreams';
import { TokenVault } from '../vault';
import { ownTrail } from './audit-handler';
import type { Trail } from './audit-page';
import { everyone, grantsOf, personView, resourceOfGrant, upstreamOfGrant } from './data';
import { NOTICES, type Notice, renderConnectionsPage, renderSignedOut } from './page';
import { CONNECTIONS_PATH, readSession, type Session, signOutCookie } from './session';

const AGAIN = { startAgain: 'connections' } as const;

export async function handleConnections(request: Request, leg: BrowserLeg): Promise<Response> {
  const { helpers, config, env, ctx } = leg;
  const url = new URL(request.url);
  const session = await readSession(request, config);
  const vault = new TokenVault(env.OAUTH_KV, config.tokenKeys);
  if (request.method === 'GET') {
    // Writes nothing to KV: the sign-in's state is a sealed cookie.
    if (!session) return redirectToAccess(leg, url.origin, 'connections');
    const notice = url.searchParams.get('done');
    return showPage(helpers, vault, config, env, session, url.origin, {
      ...(notice && notice in NOTICES ? { notice: notice as Notice } : {}),
      activity: await ownTrail(helpers, env, session.email, url.searchParams.get('before')),
    });
  }
  if (request.method !== 'POST') {
    throw new PageError('method_not_allowed', `${request.method} ${CONNECTIONS_PATH}`, { ...AGAIN, headers: new Headers({ Allow: 'GET, POST' }) });
  }

  if (isCrossSitePost(request, url.origin)) {
    throw new PageError('cross_site', 'connections posted cross-site', AGAIN);
  }
  const form = await request.formData().catch(() => undefined);
  // Without a session, or with a field from another session, the form is not this person's.
  if (!session || form?.get('csrf') !== session.csrf) {
    throw new PageError('session_ended', session ? 'connections csrf mismatch' : 'connections post without session', AGAIN);
  }
  const field = (name: string) => {
    const value = form.get(name);
    return typeof value === 'string' ? value : '';
  };
  const action = field('action');
  if (action === 'sign-out') return renderSignedOut(new Headers({ 'Set-Cookie': signOutCookie() }));

  const email = field('email') || session.email;
  if (email !== session.email && !session.admin) {
    throw new PageError('not_yours', `connections: ${session.email} acted on ${email}`);
  }
  const who = { actor: session.email, subject: email };
  const done = (notice: Notice) =>
    new Response(null, { status: 303, headers: { Location: `${CONNECTIONS_PATH}?done=${notice}`, 'Cache-Control': 'no-store' } });

  switch (action) {
    case 'disconnect': {
      const grant = (await grantsOf(helpers, email)).find((g) => g.id === field('grant'));
      if (!grant) throw new PageError('not_found', 'connections: unknown grant', AGAIN);
      await helpers.revokeGrant(grant.id, email);
      emit({ event: 'app_disconnected', ...who, upstream: resourceOfGrant(config, grant)?.name ?? '', clientId: grant.clientId });
      return done('disconnected');
    }
    case 'delete-token': {
      const upstream = ownTokenUpstream(config, field('upstream'));
      await vault.remove(email, upstream.name);
      // The apps connected with that token would otherwise go on with a fallback or fail: end them.
      for (const grant of await grantsOf(helpers, email)) {
        if (upstreamOfGrant(config, grant) === upstream) await helpers.revokeGrant(grant.id, email);
      }
      emit({ event: 'own_token_deleted', ...who, upstream: upstream.name });
      return done('deleted');
    }
    case 'replace-token': {
      if (email !== session.email) {
        throw new PageError('not_yours', 'connections: token for someone else');
      }
      const upstream = ownTokenUpstream(config, field('upstream'));
      if (!isAllowedEmail(config, upstream, sessionPerson(session))) {
        throw new PageError('not_allowed', 'connections: token for a refused upstream', { email, server: serverName(upstream) });
      }
      const vetted = await vetPastedToken(upstream, serverName(upstream), form.get('token'), ctx);
      if ('problem' in vetted) {
        return showPage(helpers, vault, config, env, session, url.origin, {
          problem: { upstream: upstream.name, message: vetted.problem },
          status: vetted.status,
        });
      }
      const replacing = (await vault.read(email, upstream.name)) !== undefined;
      await vault.save(email, upstream.name, vetted.token);
      emit({ event: replacing ? 'own_token_replaced' : 'own_token_saved', ...who, upstream: upstream.name, via: 'connections' });
      return done('saved');
    }
  }
  throw new PageError('unknown_action', `connections action ${JSON.stringify(action.slice(0, 40))}`, AGAIN);
}

/** The signed-in person, as the permissions see them. */
function sessionPerson(session: Session): Person {
  return { email: session.email, ...(session.groups ? { groups: session.groups } : {}) };
}

function ownTokenUpstream(config: Config, name: string): UpstreamConfig {
  const upstream = config.upstreams.find((u) => u.name === name && takesOwnTokens(u));
  if (!upstream) {
    throw new PageError('unknown_server', `connections: no userSupplied upstream ${JSON.stringify(name.slice(0, 40))}`, AGAIN);
  }
  return upstream;
}

async function showPage(
  helpers: OAuthHelpers,
  vault: TokenVault,
  config: Config,
  env: Env,
  session: Session,
  origin: string,
  extra: { notice?: Notice; activity?: Trail; problem?: { upstream: string; message: string }; status?: number },
): Promise<Response> {
  const own = await personView(helpers, vault, config, sessionPerson(session), true);
  const others = session.admin
    ? await Promise.all(
        (await everyone(env.OAUTH_KV, vault)).filter((e) => e !== session.email).map((email) => personView(helpers, vault, config, { email }, false)),
      )
    : undefined;
  return renderConnectionsPage({ session, origin, own, ...(others ? { others } : {}), ...extra });
}
