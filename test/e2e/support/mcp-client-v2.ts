/**
 * The MCP TypeScript SDK v2's client (`@modelcontextprotocol/client`) with its own OAuth, as a
 * 2026-era host runs it: it negotiates with `server/discover` first (`versionNegotiation: auto`,
 * falling back to `initialize`), and checks the issuer the gateway names in its redirect (RFC 9207).
 * The person at the browser is the same headless `Person` the v1 helper uses.
 */
import { Client, type OAuthClientProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { HeadlessOAuthProvider, REDIRECT_URI } from './mcp-client';
import { type OwnToken, Person } from './person';

export interface ConnectedV2 {
  client: Client;
  transport: StreamableHTTPClientTransport;
  provider: HeadlessOAuthProvider;
  /** Every request the client sent: HTTP method, JSON-RPC method, and the status it got. */
  exchanges: Array<{ method: string; rpc: string | undefined; status: number }>;
}

export async function connectV2WithOAuth(url: string, options: { email?: string; ownTokens?: OwnToken[] } = {}): Promise<ConnectedV2> {
  const person = new Person(options.email ?? 'alice@example.com', (u) => u.href.startsWith(REDIRECT_URI));
  person.tokensToPaste = [...(options.ownTokens ?? [])];
  const provider = new HeadlessOAuthProvider(person);
  const authProvider = provider as unknown as OAuthClientProvider;
  const exchanges: ConnectedV2['exchanges'] = [];
  const fetchAndRecord = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await fetch(input, init);
    let rpc: string | undefined;
    try {
      rpc = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }).method : undefined;
    } catch {}
    exchanges.push({ method: init?.method ?? 'GET', rpc, status: response.status });
    return response;
  };
  const transportFor = () => new StreamableHTTPClientTransport(new URL(url), { authProvider, fetch: fetchAndRecord });
  const open = async () => {
    const transport = transportFor();
    const client = new Client({ name: 'e2e-v2', version: '2.4.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(transport);
    return { client, transport, provider, exchanges };
  };
  try {
    return await open();
  } catch (error) {
    if (provider.outcome === undefined) throw error;
    const redirect = provider.outcome.kind === 'redirect' ? provider.outcome.url : undefined;
    await transportFor().finishAuth(provider.code(), redirect?.searchParams.get('iss') ?? undefined);
    return open();
  }
}
