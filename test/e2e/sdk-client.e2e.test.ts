import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpsDocuments, startHttpsDocuments } from './support/https-documents';
import { type Connected, connectWithOAuth, headlessClient, REDIRECT_URI } from './support/mcp-client';
import { type E2EStack, gatewayLogs, startE2EStack } from './support/stack';

let stack: E2EStack;
/** Client ID metadata documents, served over https by the test and trusted by the gateway. */
let documents: HttpsDocuments;
beforeAll(async () => {
  documents = await startHttpsDocuments();
  stack = await startE2EStack({ trustCaFile: documents.caFile });
});
afterAll(async () => {
  await stack?.stop();
  await documents?.close();
});

function metadataDocument(clientId: string, clientName: string) {
  return {
    client_id: clientId,
    client_name: clientName,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

function expectNotInGatewayLogs(secret: string) {
  const lines = gatewayLogs(stack);
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.filter((line) => line.includes(secret))).toEqual([]);
}

describe('MCP TypeScript SDK client with OAuth', () => {
  it('registers dynamically, signs in, lists and calls tools, and ends its session', async () => {
    const connected = await connectWithOAuth(stack.urls.mcp);
    const { provider, recorder } = connected;
    expect(provider.client?.client_id).toBeTruthy();
    expect(provider.savedTokens?.refresh_token).toBeTruthy();
    expect(recorder.count('/register', 'POST')).toBe(1);

    await useToolsAndLeave(connected);
  });

  it('uses a client ID metadata document instead of registering, signs in, lists and calls tools', async () => {
    const path = '/clients/e2e-sdk.json';
    const clientId = documents.url(path);
    documents.set(path, metadataDocument(clientId, 'e2e CIMD client'));

    const connected = await connectWithOAuth(stack.urls.mcp, { clientMetadataUrl: clientId });
    const { provider, recorder } = connected;
    // The SDK presented the URL as its client ID (the gateway advertised CIMD) and never registered.
    expect(provider.client?.client_id).toBe(clientId);
    expect(recorder.count('/register')).toBe(0);
    // The gateway fetched the document and showed its name on the consent page.
    expect(documents.requested).toContain(path);
    const consent = provider.person.seen.find((v) => v.url.pathname === '/authorize' && v.response.status === 200);
    expect(consent?.text).toContain('e2e CIMD client');
    expect(provider.savedTokens?.refresh_token).toBeTruthy();

    await useToolsAndLeave(connected);
  });

  it('refuses a metadata document whose client_id is not its own URL, on a readable page, with no code', async () => {
    const path = '/clients/impostor.json';
    const clientId = documents.url(path);
    // Claims to be another client: the document at `path` must name `path` itself.
    documents.set(path, metadataDocument(documents.url('/clients/e2e-sdk.json'), 'Impostor'));

    const { provider, recorder, person, transport } = headlessClient(stack.urls.mcp, { clientMetadataUrl: clientId });
    await expect(new Client({ name: 'e2e', version: '1.0.0' }).connect(transport())).rejects.toBeInstanceOf(UnauthorizedError);

    expect(documents.requested).toContain(path);
    const outcome = provider.outcome;
    expect(outcome?.kind).toBe('page');
    if (outcome?.kind !== 'page') return;
    expect(outcome.status).toBe(400);
    expect(outcome.url.pathname).toBe('/authorize');
    expect(person.seen.at(-1)?.response.headers.get('Content-Type')).toMatch(/^text\/html/);
    expect(outcome.text).toContain('This app could not be verified');
    expect(outcome.text).not.toMatch(/\bat .*\(.*:\d+:\d+\)|Error:/);
    // Refused before consent: no consent form, no sign-in, nothing sent to the redirect URI.
    expect(outcome.text).not.toContain('name="handle"');
    expect(person.seen.some((v) => v.url.href.startsWith(stack.urls.access.issuer))).toBe(false);
    expect(recorder.count('/token')).toBe(0);

    await recorder.expectNever(stack.upstreamToken);
    expectNotInGatewayLogs(stack.upstreamToken);
  });
});

/** What every client here does once connected, and what it must never have seen. */
async function useToolsAndLeave({ client, transport, recorder }: Connected): Promise<void> {
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['list_boards', 'create_card', 'move_card']));
  const result = await client.callTool({ name: 'list_boards', arguments: {} });
  expect(result.isError).toBeFalsy();

  await transport.terminateSession();
  await client.close();
  await recorder.expectNever(stack.upstreamToken);
  expectNotInGatewayLogs(stack.upstreamToken);
}
