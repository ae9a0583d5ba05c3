/**
 * The person on the gateway's /connections page, without a browser: signs in there (through
 * Access, as the page asks) and adds their own token for an upstream with the page's form.
 */
import type { Person } from './person';

/** Signs `person` in on /connections and saves `token` for `upstream`; resolves with the page it showed after. */
export async function addTokenOnConnections(person: Person, gatewayOrigin: string, upstream: string, token: string): Promise<string> {
  const connections = new URL('/connections', gatewayOrigin);
  const seen = person.seen.length;
  const outcome = await person.signIn(connections);
  if (outcome.kind !== 'page' || outcome.status !== 200) {
    const steps = person.seen.slice(seen).map((v) => `${v.response.status} ${v.url.pathname}${v.url.search.slice(0, 60)}`);
    throw new Error(`/connections did not show its page (${steps.join(' → ')}): ${JSON.stringify(outcome).slice(0, 300)}`);
  }
  const csrf = /name="csrf" value="([^"]+)"/.exec(outcome.text)?.[1];
  if (!csrf) throw new Error('/connections shows no form');
  const saved = await person.visit(connections, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: connections.origin },
    body: new URLSearchParams({ csrf, action: 'replace-token', upstream, token }),
  });
  if (saved.response.status !== 303) throw new Error(`/connections answered ${saved.response.status} to the token: ${saved.text.slice(0, 300)}`);
  return (await person.visit(new URL(saved.response.headers.get('Location') ?? '/connections', connections))).text;
}
