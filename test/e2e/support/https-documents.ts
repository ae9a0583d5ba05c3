/**
 * JSON documents served over https on loopback, for what the gateway must fetch from an https URL
 * of the client's choosing: client ID metadata documents. The certificate (for `localhost` and
 * 127.0.0.1) is signed by a throwaway CA made with `openssl` for this server; pass `caFile` to
 * `startE2EStack({ trustCaFile })` so the gateway's workerd trusts it (miniflare adds the
 * certificates in `NODE_EXTRA_CA_CERTS` to the trust store of the Worker's outbound fetch).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// Only the extensions asked for: the machine's openssl.cnf plays no part.
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
`;

export interface HttpsDocuments {
  /** PEM file of the CA that signed the server's certificate. */
  caFile: string;
  /** `https://localhost:<port><path>`. */
  url(path: string): string;
  /** Serves `body` as JSON at `path` from now on. */
  set(path: string, body: unknown): void;
  /** Paths requested so far, in order. */
  requested: string[];
  close(): Promise<void>;
}

export async function startHttpsDocuments(): Promise<HttpsDocuments> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-e2e-tls-'));
  try {
    const { key, cert, caFile } = await makeCertificate(dir);
    const documents = new Map<string, string>();
    const requested: string[] = [];
    const server = createServer({ key, cert }, (request, response) => {
      const path = request.url ?? '/';
      requested.push(path);
      const body = documents.get(path);
      // no-store: the library would otherwise cache a document between tests.
      response.setHeader('Cache-Control', 'no-store');
      response.setHeader('Content-Type', 'application/json');
      response.statusCode = body === undefined ? 404 : 200;
      response.end(body ?? '{"error":"not found"}');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    return {
      caFile,
      url: (path) => `https://localhost:${port}${path}`,
      set: (path, body) => void documents.set(path, JSON.stringify(body)),
      requested,
      close: async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function makeCertificate(dir: string) {
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, OPENSSL_CONFIG);
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req',
    '-config',
    config,
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=mcp-oauth-gateway e2e CA',
    '-extensions',
    'ca',
  ]);
  await run('openssl', ['req', '-config', config, '-new', ...ec, '-keyout', file('leaf.key'), '-out', file('leaf.csr'), '-subj', '/CN=localhost']);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('leaf.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-set_serial',
    '2',
    '-days',
    '1',
    '-extfile',
    config,
    '-extensions',
    'leaf',
    '-out',
    file('leaf.pem'),
  ]);
  return { key: await readFile(file('leaf.key')), cert: await readFile(file('leaf.pem')), caFile: file('ca.pem') };
}
