/**
 * The MCP TypeScript SDK's client with its own OAuth support, as an MCP host runs it: the SDK
 * discovers, registers (or presents a client ID metadata document URL), runs PKCE and exchanges
 * the code; the only thing done for it is the person at the browser (`Person`).
 */

import { type OAuthClientProvider, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type Decision, type Outcome, type OwnToken, Person } from './person';
import { Recorder } from './recorder';

export const REDIRECT_URI = 'http://127.0.0.1:53682/oauth/callback';

/** An in-memory OAuthClientProvider whose "browser" is a `Person`. */
export class HeadlessOAuthProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  savedTokens: OAuthTokens | undefined;
  verifier = '';
  /** How the last authorization ended. */
  outcome: Outcome | undefined;
  readonly clientMetadataUrl: string | undefined;

  constructor(
    readonly person: Person,
    options: { clientMetadataUrl?: string | undefined; decision?: Decision | undefined; browse?: ((url: URL) => Promise<URL>) | undefined } = {},
  ) {
    this.clientMetadataUrl = options.clientMetadataUrl;
    this.decision = options.decision ?? 'approve';
    this.browse = options.browse;
  }

  private readonly decision: Decision;
  private readonly browse: ((url: URL) => Promise<URL>) | undefined;

  get redirectUrl(): string {
    return REDIRECT_URI;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'e2e MCP SDK client',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.savedTokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.savedTokens = tokens;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  /** How many times the client sent the person to sign in. */
  authorizations = 0;
  async redirectToAuthorization(url: URL) {
    this.authorizations++;
    this.outcome = this.browse ? { kind: 'redirect', url: await this.browse(url) } : await this.person.signIn(url, this.decision);
  }

  /** The code the client's redirect URI received, or why there is none. */
  code(): string {
    const outcome = this.outcome;
    if (outcome?.kind !== 'redirect') throw new Error(`sign-in stopped at a ${outcome?.status} page: ${outcome?.text.slice(0, 300)}`);
    const code = outcome.url.searchParams.get('code');
    if (!code) throw new Error(`redirected without a code: ${outcome.url.search}`);
    return code;
  }
}

export interface Connected<T = StreamableHTTPClientTransport> {
  client: Client;
  transport: T;
  provider: HeadlessOAuthProvider;
  recorder: Recorder;
}

export interface ConnectOptions {
  email?: string;
  /** Tokens the person pastes, in turn, when the gateway asks for their own. */
  ownTokens?: OwnToken[];
  clientMetadataUrl?: string;
  recorder?: Recorder;
  /** Wraps the recording fetch the transport uses, e.g. to watch which requests it makes. */
  wrapFetch?: (fetch: FetchLike) => FetchLike;
  /** Where the client sends the person to sign in, instead of the headless `Person`: a real browser. */
  browse?: (authorizationUrl: URL) => Promise<URL>;
}

export interface HeadlessClient {
  person: Person;
  provider: HeadlessOAuthProvider;
  recorder: Recorder;
  /** The fetch transports use: the recorder's, wrapped as the options ask. */
  fetch: FetchLike;
  /** A new transport to `/mcp` that authorizes through `provider` and fetches through `recorder`. */
  transport(): StreamableHTTPClientTransport;
}

/**
 * The parts of an SDK client with OAuth, before connecting: for tests that expect the
 * connection to fail (a refused sign-in, an upstream that refuses the gateway) and look at
 * what the client and the person saw.
 */
export function headlessClient(mcpUrl: string, options: ConnectOptions & { decision?: Decision } = {}): HeadlessClient {
  const recorder = options.recorder ?? new Recorder();
  const person = new Person(options.email ?? 'alice@example.com', (url) => url.href.startsWith(REDIRECT_URI));
  person.tokensToPaste = [...(options.ownTokens ?? [])];
  recorder.watch(person);
  const provider = new HeadlessOAuthProvider(person, { clientMetadataUrl: options.clientMetadataUrl, decision: options.decision, browse: options.browse });
  const fetch = options.wrapFetch ? options.wrapFetch(recorder.fetch) : recorder.fetch;
  const transport = () => new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch });
  return { person, provider, recorder, fetch, transport };
}

/**
 * Connects to the gateway's `/mcp` as a fresh client: the first attempt meets the 401, the SDK
 * runs OAuth, the person signs in, and the second attempt connects with the token.
 */
export function connectWithOAuth(mcpUrl: string, options: ConnectOptions = {}): Promise<Connected> {
  const parts = headlessClient(mcpUrl, options);
  return connectThroughOAuth(parts, parts.transport);
}

/**
 * The same over the older HTTP+SSE transport (`SSEClientTransport`): GET `mcpUrl` opens the event
 * stream, whose `endpoint` event names where to POST messages. Same provider, person and recorder.
 */
export function connectSseWithOAuth(mcpUrl: string, options: ConnectOptions = {}): Promise<Connected<SSEClientTransport>> {
  const parts = headlessClient(mcpUrl, options);
  return connectThroughOAuth(parts, () => new SSEClientTransport(new URL(mcpUrl), { authProvider: parts.provider, fetch: parts.fetch }));
}

async function connectThroughOAuth<T extends StreamableHTTPClientTransport | SSEClientTransport>(
  { provider, recorder }: HeadlessClient,
  transportFor: () => T,
): Promise<Connected<T>> {
  let transport = transportFor();
  let client = new Client({ name: 'e2e', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.code());
    await transport.close();
    transport = transportFor();
    client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(transport);
  }
  return { client, transport, provider, recorder };
}
