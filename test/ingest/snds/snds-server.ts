import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real HTTP server on 127.0.0.1 for SNDS tests: routes by path, records every request. */
export interface TestServer {
  url: string;
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string, count: number) => void;

export async function startServer(routes: Record<string, Handler>): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body });
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const handler = routes[path];
      const count = (counts.get(path) ?? 0) + 1;
      counts.set(path, count);
      if (!handler) {
        res.writeHead(404).end();
        return;
      }
      handler(req, res, body, count);
    });
  });
  // Longer than any pause between suites: a kept-alive connection the server closes while the client
  // reuses it shows up as ECONNRESET.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A day of IP Data in the real layout, for `day` (M/D/YYYY of the activity start). */
export function dataExport(day: string, ips: string[], options: { recipients?: number; colour?: string } = {}): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  const start = `${m}/${d}/${y} 4:00 PM`;
  const end = `${next.getUTCMonth() + 1}/${next.getUTCDate()}/${next.getUTCFullYear()} 3:00 PM`;
  return ips.map((ip) => `${ip},${start},${end},${options.recipients ?? 1000},${options.recipients ?? 1000},${options.recipients ?? 1000},${options.colour ?? 'GREEN'},< 0.1%,,,0,,,\r\n`).join('');
}

export const SIGN_IN_PAGE = '<!DOCTYPE html><html><head><title>Sign in to your Microsoft account</title></head><body>Sign in to your Microsoft account</body></html>';
