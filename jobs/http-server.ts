import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { redactError } from '../lib/redact.js';

export interface HealthSource {
  /** Liveness: the process and its loops are alive (no dependency checks: a restart would not help). */
  live(): { ok: boolean; detail: string };
  /** Health: alive and the database answers. */
  healthy(): Promise<{ ok: boolean; detail: string }>;
}

/**
 * /livez, /healthz and /metrics for the scheduler. Every handler answers: an error becomes a 503 or
 * 500 with a one-line reason, never a crashed process.
 */
export async function startHttpServer(port: number, host: string, health: HealthSource, registry: Registry): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    void (async () => {
      try {
        if (path === '/livez') {
          const { ok, detail } = health.live();
          return send(ok ? 200 : 503, `${detail}\n`);
        }
        if (path === '/healthz') {
          const { ok, detail } = await health.healthy();
          return send(ok ? 200 : 503, `${detail}\n`);
        }
        if (path === '/metrics') return send(200, await registry.metrics(), registry.contentType);
        return send(404, 'not found: try /healthz, /livez or /metrics\n');
      } catch (error) {
        send(500, `error: ${redactError(error)}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
