/**
 * The real system for one test file: stand-in Access, an upstream and the gateway under
 * `wrangler dev`, on free loopback ports with their own state, stopped after the file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type StackOptions, startStack } from '../../../dev/stack.mjs';

export type E2EStack = Awaited<ReturnType<typeof startStack>> & {
  /** Every line the three parts logged, as `part: line`. */
  logs: string[];
};

export async function startE2EStack(options: StackOptions = {}): Promise<E2EStack> {
  const stateDir = await mkdtemp(join(tmpdir(), 'mcp-gateway-e2e-'));
  const logs: string[] = [];
  try {
    const stack = await startStack({
      gatewayPort: 0,
      accessPort: 0,
      upstreamPort: 0,
      stateDir,
      onLog: (part, line) => logs.push(`${part}: ${line}`),
      ...options,
    });
    return {
      ...stack,
      logs,
      stop: async () => {
        await stack.stop();
        await rm(stateDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    if (process.env.E2E_VERBOSE) console.error(logs.join('\n'));
    throw error;
  }
}
