import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../../support/backends.js';
import { runCliCaptured } from '../../support/run-cli.js';
import { fixedClock } from '../../../lib/clock.js';
import { openDatabase, type Database } from '../../../db/connection.js';
import { dataExport, SIGN_IN_PAGE, startServer, type TestServer } from './snds-server.js';

const KEY = 'Zq8-live-SNDS-key-d41d8cd98f00b204e980';
const clock = fixedClock('2026-11-27T06:00:00Z');
const fixture = (name: string) => new URL(`../../fixtures/snds/${name}`, import.meta.url).pathname;

let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    '/data': (_req, res) => res.writeHead(200).end(`${dataExport('2026-11-25', ['10.7.0.1', '10.7.0.2'])}not-an-ip,11/25/2026 4:00 PM,,1,1,1,GREEN,< 0.1%,,,0,,,\r\n`),
    '/status': (_req, res) => res.writeHead(200).end('10.7.0.0,10.7.0.255,True,Blocked due to user complaints or other evidence of spamming\r\n'),
    '/signin': (req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`${SIGN_IN_PAGE}<form action="${req.url}">`),
    '/down': (_req, res) => res.writeHead(500).end(),
  });
});
afterAll(() => server.close());

for (const backend of backends()) {
  const label = backend.available ? `repwatch ingest snds / snds links [${backend.name}]` : `repwatch ingest snds [${backend.name}: SKIPPED, ${backend.skipReason}]`;
  describe.skipIf(!backend.available)(label, () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-cli-'));
    let handle: TestDatabase | undefined;
    let env: NodeJS.ProcessEnv;
    const output: string[] = [];
    const cli = async (args: string[], config?: unknown) => {
      let extra: NodeJS.ProcessEnv = {};
      if (config) {
        const path = join(dir, `config-${output.length}.yaml`);
        writeFileSync(path, JSON.stringify(config));
        extra = { REPWATCH_CONFIG: path };
      }
      const result = await runCliCaptured(['--log-level', 'debug', ...args], { env: { ...env, ...extra }, clock, cwd: dir });
      output.push(result.stdout, result.stderr);
      return result;
    };
    // The CLI opens its own connection; the test reads the same database afterwards.
    const inspect = async <T>(fn: (db: Database) => Promise<T>): Promise<T> => {
      if (handle) return fn(handle.database);
      const db = await openDatabase({ home: dir });
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    };

    beforeAll(async () => {
      if (backend.name === 'postgres') {
        handle = await backend.create({ migrated: false });
        env = { DATABASE_URL: handle.url };
      } else {
        env = { REPWATCH_HOME: dir };
      }
    });
    afterAll(async () => {
      await handle?.drop();
    });

    const feeds = (names: [string, string][], createdOn = '2026-11-10') => ({
      snds: {
        feeds: names.map(([name, path]) => ({ name, dataUrl: `${server.url}${path}?key=${KEY}`, statusUrl: `${server.url}/status?key=${KEY}`, linkCreatedOn: createdOn })),
        refetchDays: 1,
        retries: 0,
        connectTimeoutMs: 2000,
        timeoutMs: 5000,
      },
    });

    it('loads files (IP Data and IP Status) and prints the summary as JSON', async () => {
      const result = await cli(['ingest', 'snds', '--file', fixture('ip-data-reference.csv'), '--status-file', fixture('ip-status-reference.csv'), '--feed', 'backfill', '--format', 'json']);
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout);
      expect(summary).toMatchObject({ feeds: 1, days: 2, rowsLoaded: 6, rowsReplaced: 0, rowsRejected: 0, warnings: 0 });
    });

    it('prints a readable summary table and exits 0 with rejected rows', async () => {
      const result = await cli(['ingest', 'snds', '--format', 'table'], feeds([['main', '/data']]));
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/SNDS: 1 feed\(s\), 1 day\(s\), 3 row\(s\) loaded, 0 replaced, 1 rejected/);
      expect(result.stdout).toMatch(/main\s+IP Data\s+2026-11-26\s+loaded/);
    });

    it('exits 3 when a configured link returns a sign-in page, naming the feed, the expiry date and the fix', async () => {
      const result = await cli(['ingest', 'snds', '--format', 'json'], feeds([['good', '/data'], ['stale', '/signin']]));
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/SNDS feed "stale": the link answered with an HTML page/);
      expect(result.stderr).toMatch(/should expire on 2026-12-10/);
      expect(result.stderr).toMatch(/Automated Data Access page/);
      expect(result.stderr).toMatch(/linkCreatedOn/);
      expect(JSON.parse(result.stdout).results.map((f: { feed: string }) => f.feed)).toEqual(['good', 'stale']);
    });

    it('exits 1 when a download fails for good, 2 without feeds', async () => {
      expect((await cli(['ingest', 'snds'], feeds([['down', '/down']]))).code).toBe(1);
      const none = await cli(['ingest', 'snds'], { snds: { feeds: [] } });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/no SNDS feeds are configured/);
    });

    it('one-off --url pulls without configuration; an expired link by date exits 3 before fetching', async () => {
      expect((await cli(['ingest', 'snds', '--url', `${server.url}/data?key=${KEY}`, '--feed', 'adhoc'])).code).toBe(0);
      const before = server.requests.length;
      const expired = await cli(['ingest', 'snds'], feeds([['old', '/data']], '2026-10-01'));
      expect(expired.code).toBe(3);
      expect(expired.stderr).toMatch(/"old": its automated link expired on 2026-10-31/);
      expect(server.requests.length).toBe(before);
    });

    it('snds links lists expiry date and days left, as a table and as JSON', async () => {
      const config = {
        snds: {
          feeds: [
            { name: 'fresh', dataUrl: `${server.url}/data?key=${KEY}`, linkCreatedOn: '2026-11-20' },
            { name: 'soon', dataUrl: `${server.url}/data?key=${KEY}`, linkCreatedOn: '2026-11-01' },
            { name: 'nodate', dataUrl: `${server.url}/data?key=${KEY}` },
          ],
        },
      };
      const json = await cli(['snds', 'links', '--format', 'json'], config);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout).feeds.map((f: Record<string, unknown>) => [f.feed, f.expiresOn, f.daysLeft, f.state])).toEqual([
        ['fresh', '2026-12-20', 23, 'ok'],
        ['soon', '2026-12-01', 4, 'warn'],
        ['nodate', null, null, 'unknown'],
      ]);
      const table = await cli(['snds', 'links', '--format', 'table'], config);
      expect(table.stdout).toMatch(/soon\s+2026-11-01\s+2026-12-01\s+4\s+warn/);
      expect(table.stdout).toMatch(/soon: expires soon: refresh the link/);
    });

    it('the link key appears nowhere: stdout, stderr, logs, raw downloads (bytes included), rejections', async () => {
      const all = output.join('\n');
      expect(all.length).toBeGreaterThan(1000);
      expect(all).toContain('[REDACTED]');
      expect(all).not.toContain(KEY);
      const stored = await inspect(async (db) => {
        const downloads = await db.query<{ row: string }>('select d::text as row from repwatch.raw_download d');
        const rejections = await db.query<{ row: string }>('select r::text as row from repwatch.rejection r');
        const chunks = await db.query<{ data: Uint8Array }>('select data from repwatch.raw_download_chunk');
        return { downloads, rejections, bytes: chunks.map((c) => Buffer.from(c.data).toString('utf8')) };
      });
      expect(stored.downloads.length).toBeGreaterThan(5);
      expect(stored.rejections.length).toBeGreaterThan(0);
      expect(stored.bytes.join('')).toContain('Sign in to your Microsoft account');
      for (const text of [...stored.downloads.map((d) => d.row), ...stored.rejections.map((r) => r.row), ...stored.bytes]) expect(text).not.toContain(KEY);
      expect(readFileSync(fixture('ip-data-reference.csv'), 'utf8')).not.toContain(KEY);
    });
  });
}
