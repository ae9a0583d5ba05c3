/**
 * Everything a client received from the gateway (headers and bodies of every response, and the
 * pages the person saw), so a test can show that the upstream PAT is in none of it.
 */
import { expect } from 'vitest';
import type { Person } from './person';
import { readAll } from './streams';

/** How long `everything()` waits for streams still open (a GET stream may never end). */
const SETTLE_MS = 1_000;

export class Recorder {
  private readonly received: { text: string; done: Promise<void>; cancel: () => void }[] = [];
  private readonly people: Person[] = [];
  /** Every request made through `fetch`, in order, with the status it got. */
  readonly requests: { method: string; url: URL; status: number }[] = [];

  /** A `fetch` for clients that keeps a copy of each response without delaying the original. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const url = new URL(input instanceof Request ? input.url : input);
    this.requests.push({ method: method.toUpperCase(), url, status: response.status });
    this.keep(response);
    return response;
  };

  /** How many requests the client made to `pathname` (any origin). */
  count(pathname: string, method?: string): number {
    return this.requests.filter((r) => r.url.pathname === pathname && (!method || r.method === method)).length;
  }

  keep(response: Response): void {
    const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
    const entry = { text: `${response.status} ${response.url}\n${headers}\n\n`, done: Promise.resolve(), cancel: () => {} };
    if (response.body) {
      // Read as the client does, chunk by chunk: a stream still open keeps what came so far.
      const stop = new AbortController();
      entry.cancel = () => stop.abort();
      entry.done = readAll(response.clone(), (text) => (entry.text += text), stop.signal);
    }
    this.received.push(entry);
  }

  keepText(text: string): void {
    this.received.push({ text, done: Promise.resolve(), cancel: () => {} });
  }

  watch(person: Person): void {
    this.people.push(person);
  }

  async everything(): Promise<string> {
    const pages = this.people.flatMap((p) =>
      p.seen.map((v) => `${v.response.status} ${v.url}\n${[...v.response.headers].map(([n, val]) => `${n}: ${val}`).join('\n')}\n\n${v.text}`),
    );
    await Promise.race([Promise.all(this.received.map((r) => r.done)), new Promise((resolve) => setTimeout(resolve, SETTLE_MS))]);
    for (const entry of this.received) entry.cancel();
    return [...this.received.map((r) => r.text), ...pages].join('\n----\n');
  }

  /** Asserts `secret` appears nowhere a client or person could have seen it. */
  async expectNever(secret: string): Promise<void> {
    const all = await this.everything();
    expect(all.length).toBeGreaterThan(0);
    expect(all.includes(secret), 'the upstream token reached a client').toBe(false);
  }
}
