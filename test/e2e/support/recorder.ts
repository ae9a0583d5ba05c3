/**
 * Everything a client received from the gateway (headers and bodies of every response, and the
 * pages the person saw), so a test can show that the upstream PAT is in none of it.
 *
 * Each body is read from a clone to its end, or until the client closes the request (aborts its
 * fetch). A test closes its client first, then asks: a stream still open is an error, not a
 * reason to look at less, and so is a stream that could not be read.
 */
import { expect } from 'vitest';
import type { Person } from './person';
import { readAll } from './streams';

/** How long `everything()` waits for streams to end after the test closed its client. */
const END_TIMEOUT_MS = 30_000;

interface Received {
  label: string;
  text: string;
  state: 'open' | 'ended' | 'closed' | 'failed';
  error?: unknown;
  done: Promise<void>;
}

export class Recorder {
  private readonly received: Received[] = [];
  private readonly people: Person[] = [];
  /** Every request made through `fetch`, in order, with the status it got. */
  readonly requests: { method: string; url: URL; status: number }[] = [];

  /** A `fetch` for clients that keeps a copy of each response without delaying the original. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const url = new URL(input instanceof Request ? input.url : input);
    this.requests.push({ method: method.toUpperCase(), url, status: response.status });
    this.keep(
      response,
      init?.signal ?? (input instanceof Request ? input.signal : undefined),
      `${method.toUpperCase()} ${url.pathname}${rpcMethods(init?.body)}`,
    );
    return response;
  };

  /** How many requests the client made to `pathname` (any origin). */
  count(pathname: string, method?: string): number {
    return this.requests.filter((r) => r.url.pathname === pathname && (!method || r.method === method)).length;
  }

  /** Keeps `response`, reading its body to the end; `closedBy` is the signal the client may abort it with. */
  keep(response: Response, closedBy?: AbortSignal | null, label = response.url): void {
    const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
    const entry: Received = {
      label: `${label} → ${response.status}`,
      text: `${response.status} ${response.url}\n${headers}\n\n`,
      state: 'open',
      done: Promise.resolve(),
    };
    if (response.body) {
      // Read as the client does, chunk by chunk, from a clone: the client's own reading is not delayed.
      entry.done = readAll(response.clone(), (text) => (entry.text += text), closedBy).then(
        (how) => void (entry.state = how),
        (error: unknown) => {
          entry.state = 'failed';
          entry.error = error;
        },
      );
    } else {
      entry.state = 'ended';
    }
    this.received.push(entry);
  }

  keepText(text: string): void {
    this.received.push({ label: 'text', text, state: 'ended', done: Promise.resolve() });
  }

  watch(person: Person): void {
    this.people.push(person);
  }

  /**
   * All the client and the person received, once every body has ended or been closed by the
   * client. Throws if a body is still open after a generous wait or could not be read.
   */
  async everything(): Promise<string> {
    const pages = this.people.flatMap((p) =>
      p.seen.map((v) => `${v.response.status} ${v.url}\n${[...v.response.headers].map(([n, val]) => `${n}: ${val}`).join('\n')}\n\n${v.text}`),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = await Promise.race([
      Promise.all(this.received.map((r) => r.done)).then(() => 'all' as const),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), END_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const open = this.received.filter((r) => r.state === 'open');
    if (waited === 'timeout' || open.length > 0) {
      throw new Error(`still open ${END_TIMEOUT_MS} ms after the test's last request (close the client first): ${open.map((r) => r.label).join(', ')}`);
    }
    const failed = this.received.filter((r) => r.state === 'failed');
    if (failed.length > 0) {
      throw new Error(
        `could not read what the client received: ${failed.map((r) => `${r.label}: ${String((r.error as Error)?.cause ?? r.error)}`).join('; ')}`,
        {
          cause: failed[0]?.error,
        },
      );
    }
    return [...this.received.map((r) => r.text), ...pages].join('\n----\n');
  }

  /** Asserts `secret` appears nowhere a client or person could have seen it. */
  async expectNever(secret: string): Promise<void> {
    const all = await this.everything();
    expect(all.length).toBeGreaterThan(0);
    expect(all.includes(secret), 'the upstream token reached a client').toBe(false);
  }
}

/** The JSON-RPC method(s) of a request body, to name a stream in a failure message. */
function rpcMethods(body: unknown): string {
  if (typeof body !== 'string') return '';
  try {
    const methods = [JSON.parse(body)].flat().map((m: { method?: unknown }) => m?.method);
    return ` (${methods.filter((m) => typeof m === 'string').join(', ')})`;
  } catch {
    return '';
  }
}
