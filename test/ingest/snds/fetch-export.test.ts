import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchExport, FetchFailedError, type FetchOptions } from '../../../ingest/snds/fetch-export.js';
import { fixedClock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/logger.js';
import { startServer, type TestServer } from './snds-server.js';
import { cutOffBody } from '../../../ingest/snds/ingest-feed.js';

const EXPORT = Array.from({ length: 400 }, (_, i) => `10.0.${i >> 8}.${i & 255},2/10/2026 4:00 PM,2/11/2026 3:00 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n`).join('');
const TOKEN = 'Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-access-token';

const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({
  fetch: globalThis.fetch,
  sleep: async () => undefined,
  clock: fixedClock('2026-11-28T06:00:00Z'),
  logger: silentLogger(),
  connectTimeoutMs: 5_000,
  timeoutMs: 10_000,
  retries: 2,
  headers: { authorization: TOKEN },
  ...extra,
});

describe('fetchExport: redirects and body size', () => {
  let api: TestServer;
  let storage: TestServer;
  beforeAll(async () => {
    storage = await startServer({
      '/blob/export.csv': (_req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end('1.2.3.4,x\r\n'),
    });
    api = await startServer({
      '/same-host': (_req, res) => res.writeHead(302, { location: '/data' }).end(),
      '/data': (_req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end('1.2.3.4,x\r\n'),
      '/to-storage': (_req, res) => res.writeHead(302, { location: `${storage.url}/blob/export.csv?sig=abc` }).end(),
      '/huge': (_req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end('x'.repeat(5_000)),
      '/bomb': (_req, res) => res.writeHead(200, { 'content-type': 'text/csv', 'content-encoding': 'gzip' }).end(gzipSync(Buffer.alloc(200_000, 'a'))),
    });
  });
  afterAll(async () => {
    await api.close();
    await storage.close();
  });

  it('keeps the bearer token on a redirect within the host, and drops it on a redirect to another host', async () => {
    (await fetchExport(`${api.url}/same-host`, options())).dispose();
    expect(api.requests.filter((r) => r.url === '/data').map((r) => r.headers.authorization)).toEqual([TOKEN]);
    const body = await fetchExport(`${api.url}/to-storage`, options());
    expect(readFileSync(body.file, 'utf8')).toBe('1.2.3.4,x\r\n');
    body.dispose();
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('refuses a body over maxBytes, counted after decompression, at the first attempt (no retries)', async () => {
    for (const path of ['/huge', '/bomb']) {
      const error = await fetchExport(`${api.url}${path}`, options({ maxBytes: 1_000 })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FetchFailedError);
      expect((error as FetchFailedError).message).toMatch(/^download refused: the body is over 1,000 bytes: not an SNDS export$/);
      expect((error as FetchFailedError).attempts).toBe(1);
      expect(api.requests.filter((r) => r.url === path)).toHaveLength(1);
    }
  });
});

describe('fetchExport: a body cut short', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      '/gzip-cut': (_req, res, _body, count) => {
        const full = gzipSync(Buffer.from(EXPORT));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }).end(count === 1 ? full.subarray(0, Math.floor(full.length * 0.6)) : full);
      },
      '/status-cut': (_req, res, _body, count) => res.writeHead(200).end(count === 1 ? '1.1.1.0,1.1.1.1,Yes,x\n1.1.1.254,1.1.2' : '1.1.1.0,1.1.1.1,Yes,x\n1.1.1.254,1.1.2.1,Yes,x\n'),
      '/error-text': (_req, res) => res.writeHead(200).end('{"error":"key expired"}'),
      '/always-cut': (_req, res) => res.writeHead(200).end(EXPORT.slice(0, -30)),
    });
  });
  afterAll(async () => {
    await server.close();
  });
  const cutOff = (kind: 'ip_data' | 'ip_status') => ({ cutOff: (head: Buffer, tail: Buffer) => cutOffBody(kind, head, tail) });

  it('asks for no compression, and retries a gzip body that ends inside a line (fetch decodes it without complaint)', async () => {
    const body = await fetchExport(`${server.url}/gzip-cut`, options(cutOff('ip_data')));
    expect(readFileSync(body.file, 'utf8')).toBe(EXPORT);
    body.dispose();
    expect(server.requests.filter((r) => r.url === '/gzip-cut').map((r) => r.headers['accept-encoding'])).toEqual(['identity', 'identity']);
  });

  it('retries an IP Status body cut inside a line; fails after the retries; leaves a body that is no export to the classifier', async () => {
    const body = await fetchExport(`${server.url}/status-cut`, options(cutOff('ip_status')));
    expect(readFileSync(body.file, 'utf8')).toBe('1.1.1.0,1.1.1.1,Yes,x\n1.1.1.254,1.1.2.1,Yes,x\n');
    body.dispose();
    const error = await fetchExport(`${server.url}/always-cut`, options({ ...cutOff('ip_data'), retries: 1 })).catch((e: unknown) => e);
    expect((error as FetchFailedError).message).toMatch(/^download failed after 2 attempt\(s\): body truncated: the input ends inside a line/);
    const page = await fetchExport(`${server.url}/error-text`, options(cutOff('ip_data')));
    expect(readFileSync(page.file, 'utf8')).toBe('{"error":"key expired"}');
    page.dispose();
  });
});

describe('fetchExport: an https link redirected to plain http', () => {
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-tls-'));
  let plain: TestServer;
  let secure: ReturnType<typeof createServer>;
  let secureUrl = '';
  let previousTlsSetting: string | undefined;
  beforeAll(async () => {
    plain = await startServer({ '/data': (_req, res) => res.writeHead(200).end('1.2.3.4,x\r\n') });
    // A self-signed certificate for 127.0.0.1; this test file's worker accepts it.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    secure = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
      res.writeHead(302, { location: `${plain.url}/data?key=abc` }).end();
    });
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', () => resolve()));
    secureUrl = `https://127.0.0.1:${(secure.address() as AddressInfo).port}`;
    previousTlsSetting = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  });
  afterAll(async () => {
    if (previousTlsSetting === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previousTlsSetting;
    secure.closeAllConnections();
    await new Promise<void>((resolve) => secure.close(() => resolve()));
    await plain.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused without following it, and the key in the target is not shown', async () => {
    const error = await fetchExport(`${secureUrl}/export?key=abc`, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FetchFailedError);
    expect((error as Error).message).toMatch(/^download refused: redirected from https to http:\/\/127\.0\.0\.1:\d+\/data\?key=\S+: the rest of the way would not be encrypted$/);
    expect((error as Error).message).not.toContain('key=abc');
    expect(plain.requests).toEqual([]);
  });
});
