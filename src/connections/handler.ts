/**
 * /connections: GET shows the page (signing in through Access first); POST carries one action,
 * each CSRF-protected (same-site Origin and a session-bound field): replace or delete a token,
 * disconnect an app, sign out. A person acts on their own connections only; an admin
 * (ADMIN_EMAILS) on anyone's, and each admin action is logged with who did what to whom.
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { isAllowedEmail } from '../access/allowlist';
import type { Config, UpstreamConfig } from '../config';
import type { BrowserLeg } from '../context';
import { PageError } from '../errors';
import { isCrossSitePost } from '../lib/origin';
import { serverName } from '../own-token/login-step';
import { vetPastedToken } from '../own-token/vet';
import { TokenVault } from '../vault/store';
import { everyone, grantsOf, personView, upstreamOfGrant } from './data';
import { NOTICES, type Notice, renderConnectionsPage, renderSignedOut } from './page';
import { CONNECTIONS_PATH, readSession, type Session, signOutCookie, startConnectionsLogin } from './session';

const AGAIN = `Open ${CONNECTIONS_PATH} and try again.`;

export async function handleConnections(request: Request, { helpers, config, env, ctx }: BrowserLeg): Promise<Response> {
  const url = new URL(request.url);
  const session = await readSession(request, config);
  const vault = new TokenVault(env.OAUTH_KV, config.tokenKeys);
  if (request.method === 'GET') {
    if (!session) return startConnectionsLogin(config, url.origin);
    const notice = url.searchParams.get('done');
    return showPage(helpers, vault, config, env, session, url.origin, { ...(notice && notice in NOTICES ? { notice: notice as Notice } : {}) });
  }
  if (request.method !== 'POST') {
    throw new PageError(405, 'Method not allowed', AGAIN, `${request.method} ${CONNECTIONS_PATH}`, { headers: new Headers({ Allow: 'GET, POST' }) });
  }

  if (isCrossSitePost(request, url.origin)) {
    throw new PageError(403, 'Request refused', `This form can only be sent from this site. ${AGAIN}`, 'connections posted cross-site');
  }
  const form = await request.formData().catch(() => undefined);
  // Without a session, or with a field from another session, the form is not this person's.
  if (!session || form?.get('csrf') !== session.csrf) {
    throw new PageError(
      403,
      'Your session has ended',
      `Sign in again to manage your connections. ${AGAIN}`,
      session ? 'connections csrf mismatch' : 'connections post without session',
    );
  }
  const field = (name: string) => {
    const value = form.get(name);
    return typeof value === 'string' ? value : '';
  };
  const action = field('action');
  if (action === 'sign-out') return renderSignedOut(new Headers({ 'Set-Cookie': signOutCookie() }));

  const email = field('email') || session.email;
  if (email !== session.email && !session.admin) {
    throw new PageError(403, 'Not allowed', 'You can only change your own connections.', `connections: ${session.email} acted on ${email}`);
  }
  const audit = (what: Record<string, string>) => {
    if (email !== session.email) console.log(JSON.stringify({ event: 'admin_action', admin: session.email, person: email, ...what }));
  };
  const done = (notice: Notice) =>
    new Response(null, { status: 303, headers: { Location: `${CONNECTIONS_PATH}?done=${notice}`, 'Cache-Control': 'no-store' } });

  switch (action) {
    case 'disconnect': {
      const grant = (await grantsOf(helpers, email)).find((g) => g.id === field('grant'));
      if (!grant) throw new PageError(404, 'Not found', `That app is not connected to this account (any more). ${AGAIN}`, 'connections: unknown grant');
      await helpers.revokeGrant(grant.id, email);
      audit({ action: 'disconnect', upstream: upstreamOfGrant(config, grant)?.name ?? '', clientId: grant.clientId });
      return done('disconnected');
    }
    case 'delete-token': {
      const upstream = ownTokenUpstream(config, field('upstream'));
      await vault.remove(email, upstream.name);
      // The apps connected with that token would otherwise go on with a fallback or fail: end them.
      for (const grant of await grantsOf(helpers, email)) {
        if (upstreamOfGrant(config, grant) === upstream) await helpers.revokeGrant(grant.id, email);
      }
      audit({ action: 'delete-token', upstream: upstream.name });
      console.log(JSON.stringify({ event: 'own_token_deleted', email, upstream: upstream.name, by: session.email }));
      return done('deleted');
    }
    case 'replace-token': {
      if (email !== session.email) {
        throw new PageError(403, 'Not allowed', 'Only the person themselves can save a token.', 'connections: token for someone else');
      }
      const upstream = ownTokenUpstream(config, field('upstream'));
      if (!isAllowedEmail(config, upstream, email)) {
        throw new PageError(403, 'Not allowed', `${email} is not allowed to use ${serverName(upstream)}.`, 'connections: token for a refused upstream');
      }
      const vetted = await vetPastedToken(upstream, serverName(upstream), form.get('token'), ctx);
      if ('problem' in vetted) {
        return showPage(helpers, vault, config, env, session, url.origin, {
          problem: { upstream: upstream.name, message: vetted.problem },
          status: vetted.status,
        });
      }
      await vault.save(email, upstream.name, vetted.token);
      console.log(JSON.stringify({ event: 'own_token_saved', email, upstream: upstream.name, via: 'connections' }));
      return done('saved');
    }
  }
  throw new PageError(400, 'Unknown action', AGAIN, `connections action ${JSON.stringify(action.slice(0, 40))}`);
}

function ownTokenUpstream(config: Config, name: string): UpstreamConfig {
  const upstream = config.upstreams.find((u) => u.name === name && u.userSupplied);
  if (!upstream) {
    throw new PageError(
      400,
      'Unknown server',
      `That server takes no token of yours. ${AGAIN}`,
      `connections: no userSupplied upstream ${JSON.stringify(name.slice(0, 40))}`,
    );
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
  extra: { notice?: Notice; problem?: { upstream: string; message: string }; status?: number },
): Promise<Response> {
  const own = await personView(helpers, vault, config, session.email, true);
  const others = session.admin
    ? await Promise.all((await everyone(env.OAUTH_KV, vault)).filter((e) => e !== session.email).map((e) => personView(helpers, vault, config, e, false)))
    : undefined;
  return renderConnectionsPage({ session, origin, own, ...(others ? { others } : {}), ...extra });
}
