import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the SNDS automated-access link on 127.0.0.1: serves an IP Data export in the real
 * layout (no header, 14 columns). `hold()` makes the next requests wait until `release()`, so a test
 * can catch a job in the middle of its run.
 */
export interface SndsServer {
  url: string;
  requests: string[];
  hold(): void;
  release(): void;
  /** Resolves when a request is being held. */
  held(): Promise<void>;
  close(): Promise<void>;
}

/** The day a legacy-style link asks for with `date=MMDDYY`. */
export function requestedDay(url: URL): string | null {
  const m = /^(\d{2})(\d{2})(\d{2})$/.exec(url.searchParams.get('date') ?? '');
  return m ? `20${m[3]}-${m[1]}-${m[2]}` : null;
}

export function ipDataCsv(day: string, ips: readonly string[]): string {
  const [y, m, d] = day.split('-').map(Number);
  const date = `${m}/${d}/${y}`;
  return ips.map((ip, i) => `${ip},${date} 12:00 AM,${date} 11:59 PM,${1000 + i},${1000 + i},${990 + i},GREEN,< 0.1%,,,0,,,`).join('\r\n') + '\r\n';
}

export async function startSndsServer(body: (url: URL) => string): Promise<SndsServer> {
  const requests: string[] = [];
  let holding = false;
  const waiting: (() => void)[] = [];
  let onHeld: (() => void) | undefined;
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      res.end(body(new URL(req.url ?? '/', 'http://127.0.0.1')));
    };
    if (!holding) return answer();
    waiting.push(answer);
    onHeld?.();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const answer of waiting.splice(0)) answer();
    },
    held: () => (waiting.length ? Promise.resolve() : new Promise<void>((resolve) => (onHeld = resolve))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
