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

export interface E2EStackOptions extends StackOptions {
  /**
   * A PEM file of CA certificates the gateway's outbound fetch trusts (for https servers the
   * test runs, e.g. client ID metadata documents). Handed to wrangler as `NODE_EXTRA_CA_CERTS`,
   * which miniflare adds to workerd's trust store.
   */
  trustCaFile?: string;
}

export async function startE2EStack({ trustCaFile, ...options }: E2EStackOptions = {}): Promise<E2EStack> {
  const stateDir = await mkdtemp(join(tmpdir(), 'mcp-gateway-e2e-'));
  const logs: string[] = [];
  // wrangler inherits this process's environment when startStack spawns it.
  const previousCaCerts = process.env.NODE_EXTRA_CA_CERTS;
  if (trustCaFile) process.env.NODE_EXTRA_CA_CERTS = trustCaFile;
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
  } finally {
    if (trustCaFile) {
      if (previousCaCerts === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = previousCaCerts;
    }
  }
}

/** The lines the gateway (wrangler dev and the Worker's console) logged. */
export function gatewayLogs(stack: E2EStack): string[] {
  return stack.logs.filter((line) => line.startsWith('gateway:'));
}

/** A value set in `beforeAll`; a clear failure in each test when the stack did not start. */
export function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the stack did not start');
  return value;
}
