// @ts-check
import { createServer } from 'node:net';

/** A port another program holds; `name` says which part of the stack wanted it. */
export class PortBusyError extends Error {
  /** @param {string} name @param {number} port */
  constructor(name, port) {
    super(`port ${port} (for the ${name}) is already in use`);
    this.name = 'PortBusyError';
    this.part = name;
    this.port = port;
  }
}

/**
 * Throws `PortBusyError` unless `port` is free on loopback. Both 127.0.0.1 and ::1 are tried:
 * `localhost` may resolve to either, and a program on [::1]:port would answer in our place.
 * @param {string} name @param {number} port
 */
export async function assertPortFree(name, port) {
  for (const host of ['127.0.0.1', '::1']) {
    const error = await tryListen(port, host);
    if (error?.code === 'EADDRINUSE' || error?.code === 'EACCES') throw new PortBusyError(name, port);
    // EADDRNOTAVAIL / EAFNOSUPPORT: no IPv6 loopback here, nothing can be listening on it.
  }
}

/** A port that was free on 127.0.0.1 a moment ago (for tests, and wrangler's inspector). */
export async function findFreePort() {
  const server = createServer();
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  if (typeof address !== 'object' || !address) throw new Error('could not find a free port');
  return address.port;
}

/** @param {number} port @param {string} host @returns {Promise<NodeJS.ErrnoException | undefined>} */
function tryListen(port, host) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error) => resolve(error));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
