import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWithOAuth } from './support/mcp-client';
import { type E2EStack, startE2EStack } from './support/stack';

let stack: E2EStack;
beforeAll(async () => {
  stack = await startE2EStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe('MCP TypeScript SDK client with OAuth', () => {
  it('registers dynamically, signs in, lists and calls tools, and ends its session', async () => {
    const { client, transport, provider, recorder } = await connectWithOAuth(stack.urls.mcp);
    expect(provider.client?.client_id).toBeTruthy();
    expect(provider.savedTokens?.refresh_token).toBeTruthy();

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['list_boards', 'create_card', 'move_card']));

    const result = await client.callTool({ name: 'list_boards', arguments: {} });
    expect(result.isError).toBeFalsy();

    await transport.terminateSession();
    await client.close();
    await recorder.expectNever(stack.upstreamToken);
  });
});
