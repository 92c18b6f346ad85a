import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backends, type TestDatabase } from '../../support/backends.js';
import { inspectCliDatabase, runCliCaptured } from '../../support/run-cli.js';
import { fixedClock } from '../../../lib/clock.js';
import type { Database } from '../../../db/connection.js';
import { dataExport, SIGN_IN_PAGE, startServer, type TestServer } from './snds-server.js';

const KEY = 'Zq8-live-SNDS-key-d41d8cd98f00b204e980';
const API_ACCESS = 'cli-access-token-0123456789abcdef';
const clock = fixedClock('2026-11-27T06:00:00Z');
const fixture = (name: string) => new URL(`../../fixtures/snds/${name}`, import.meta.url).pathname;

let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    '/data': (_req, res) => res.writeHead(200).end(`${dataExport('2026-11-25', ['10.7.0.1', '10.7.0.2'])}not-an-ip,11/25/2026 4:00 PM,,1,1,1,GREEN,< 0.1%,,,0,,,\r\n`),
    '/status': (_req, res) => res.writeHead(200).end('10.7.0.0,10.7.0.255,True,Blocked due to user complaints or other evidence of spamming\r\n'),
    '/signin': (req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`${SIGN_IN_PAGE}<form action="${req.url}">`),
    '/down': (_req, res) => res.writeHead(500).end(),
    // An expired link answering with a JSON error that echoes the request (key included).
    '/json': (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'InvalidKey', request: req.url })),
    '/status-once': (_req, res) => res.writeHead(200).end('10.7.9.0,10.7.9.15,Yes,SpamHaus SBL/XBL\r\n'),
    // The REST API: the token refresh works, the data endpoint refuses the token.
    '/token': (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: API_ACCESS, refresh_token: 'cli-refresh-token-rotated-0123', expires_in: 3600 })),
    '/api/report/data/2026-11-26': (_req, res) => res.writeHead(401).end(),
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
    const inspect = <T>(fn: (db: Database) => Promise<T>): Promise<T> => inspectCliDatabase(handle, dir, fn);

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
        feeds: names.map(([name, path]) => ({ name, dataUrl: `${server.url}${path}?key=${KEY}`, statusUrl: `${server.url}/status?key=${KEY}`, linkCreatedOn: createdOn, dateParameter: true })),
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

    it('an empty --status-file is refused (exit 2) unless --allow-empty-status says it means nothing is blocked', async () => {
      const empty = join(dir, 'empty-status.csv');
      writeFileSync(empty, '\r\n');
      const refused = await cli(['ingest', 'snds', '--status-file', empty, '--feed', 'emptycheck', '--format', 'json']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--status-file \S*empty-status\.csv is empty: loaded, it says nothing of yours is blocked and clears the feed's current block list\. If that is so, add --allow-empty-status/);
      const allowed = await cli(['ingest', 'snds', '--status-file', empty, '--feed', 'emptycheck', '--allow-empty-status', '--format', 'json']);
      expect(allowed.code).toBe(0);
      expect(await inspect((db) => db.query(`select outcome from repwatch.raw_download where feed = 'emptycheck'`))).toEqual([{ outcome: 'empty' }]);
    });

    it('an ingest that loads nothing new (the same file again) still recomputes days an interrupted run left pending', async () => {
      await inspect((db) => db.query(`insert into repwatch.recompute_pending (day) values ('2019-12-31') on conflict do nothing`));
      const again = await cli(['ingest', 'snds', '--file', fixture('ip-data-reference.csv'), '--feed', 'backfill', '--format', 'json']);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ rowsLoaded: 0 });
      expect(await inspect((db) => db.query('select day from repwatch.recompute_pending'))).toEqual([]);
    });

    it('warns about IP Data dated after today, keeps it, and flags still decide as of a day that has passed', async () => {
      const future = join(dir, 'future.csv');
      writeFileSync(future, '203.0.113.10,12/25/2026 12:00 AM,12/25/2026 11:59 PM,1377,1377,1358,GREEN,< 0.1%,,,0,,\n');
      const result = await cli(['ingest', 'snds', '--file', future, '--feed', 'future-feed', '--format', 'table']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/warning: IP Data for 1 day\(s\) after today \(2026-11-27\): 2026-12-25; SNDS reports past days only/);
      expect(await inspect((db) => db.query(`select day::text from repwatch.snds_row where feed = 'future-feed'`))).toEqual([{ day: '2026-12-25' }]);
      const flags = await cli(['flags', '--format', 'table']);
      expect(flags.code).toBe(0);
      const asOf = /^Decisions as of (\d{4}-\d{2}-\d{2})/.exec(flags.stdout)?.[1];
      expect(asOf).toBeDefined();
      expect(asOf! <= '2026-11-27').toBe(true);
    });

    it('refuses --date today or later (exit 2, nothing fetched): SNDS reports past days only', async () => {
      const result = await cli(['ingest', 'snds', '--date', '2027-01-01'], feeds([['main', '/data']]));
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--date 2027-01-01 is not before today \(2026-11-27, UTC\)/);
      expect((await cli(['ingest', 'snds', '--date', '2026-11-27'], feeds([['main', '/data']]))).code).toBe(2);
    });

    it('prints a readable summary table and exits 0 with rejected rows', async () => {
      const result = await cli(['ingest', 'snds', '--format', 'table'], feeds([['main', '/data']]));
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/SNDS: 1 feed\(s\), 1 day\(s\), 2 IP Data row\(s\) loaded, 1 IP Status range\(s\), 0 replaced, 1 rejected/);
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

    it('refuses --date or --since with a one-off input, which is loaded whole (exit 2, nothing fetched)', async () => {
      const before = server.requests.length;
      for (const extra of [['--file', 'data.csv', '--date', '2026-11-20'], ['--url', `${server.url}/data?key=${KEY}`, '--since', '2026-11-01']]) {
        const result = await cli(['ingest', 'snds', ...extra]);
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(/--date and --since choose what to fetch from configured feeds; --file, --status-file, --url and --status-url load their input whole/);
        expect(result.stderr).not.toContain(KEY);
      }
      expect(server.requests.length).toBe(before);
    });

    it('one-off --url pulls without configuration; an expired link by date exits 3 before fetching', async () => {
      expect((await cli(['ingest', 'snds', '--url', `${server.url}/data?key=${KEY}`, '--feed', 'adhoc'])).code).toBe(0);
      const before = server.requests.length;
      const expired = await cli(['ingest', 'snds'], feeds([['old', '/data']], '2026-10-01'));
      expect(expired.code).toBe(3);
      expect(expired.stderr).toMatch(/"old": its automated link expired on 2026-10-31/);
      expect(server.requests.length).toBe(before);
    });

    it('exits 3 when a configured link answers 200 with a JSON error, naming the feed, the expiry date and the fix', async () => {
      const result = await cli(['ingest', 'snds', '--format', 'json'], feeds([['jsonerr', '/json']]));
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/SNDS feed "jsonerr": the link answered \(HTTP 200, application\/json\) with something that is not an SNDS IP Data export/);
      expect(result.stderr).toMatch(/should expire on 2026-12-10/);
      expect(result.stderr).toMatch(/Automated Data Access page/);
    });

    it('exits 1 for a file that is mostly not SNDS rows (a file is not a link)', async () => {
      const path = join(dir, 'not-snds.csv');
      writeFileSync(path, '{"error":"this is not an export"}\n{"more":"json"}\n');
      const result = await cli(['ingest', 'snds', '--file', path, '--feed', 'junk']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/probably not an SNDS IP Data export/);
    });

    it('--status-url pulls an IP Status export once, and it becomes the block list of its feed', async () => {
      const result = await cli(['ingest', 'snds', '--status-url', `${server.url}/status-once?key=${KEY}`, '--feed', 'adhoc-status', '--format', 'json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout).results[0].inputs.map((i: { kind: string; outcome: string }) => [i.kind, i.outcome])).toEqual([['ip_status', 'loaded']]);
      const ranges = await inspect((db) =>
        db.query(`select host(r.first_ip) as first_ip, host(r.last_ip) as last_ip from repwatch.snds_status_range r join repwatch.current_status_download c on c.id = r.download_id where c.feed = 'adhoc-status'`),
      );
      expect(ranges).toEqual([{ first_ip: '10.7.9.0', last_ip: '10.7.9.15' }]);
    });

    it('--status-file - reads stdin, and the decisions of the latest day say blocked at once', async () => {
      const data = join(dir, 'today.csv');
      writeFileSync(data, dataExport('2026-11-27', ['10.6.0.1', '10.6.0.2']));
      expect((await cli(['ingest', 'snds', '--file', data, '--feed', 'stdin-test'])).code).toBe(0);
      const blocked = () => inspect((db) => db.query<{ ip: string; blocked: boolean }>(`select host(ip) as ip, blocked from analytics.ip_flag where as_of = '2026-11-27' and ip <<= '10.6.0.0/24' order by ip`));
      expect(await blocked()).toEqual([
        { ip: '10.6.0.1', blocked: false },
        { ip: '10.6.0.2', blocked: false },
      ]);
      const stdin = vi.spyOn(process, 'stdin', 'get').mockReturnValue(Readable.from([Buffer.from('10.6.0.1,10.6.0.1,Yes,E-mail address harvesting\r\n')]) as unknown as typeof process.stdin);
      try {
        const result = await cli(['ingest', 'snds', '--status-file', '-', '--feed', 'stdin-test', '--format', 'json']);
        expect(result.code).toBe(0);
        expect(JSON.parse(result.stdout).results[0].inputs.map((i: { source: string; location: string; outcome: string }) => [i.source, i.location, i.outcome])).toEqual([['stdin', 'stdin', 'loaded']]);
      } finally {
        stdin.mockRestore();
      }
      expect(await blocked()).toEqual([
        { ip: '10.6.0.1', blocked: true },
        { ip: '10.6.0.2', blocked: false },
      ]);
    });

    it('exits 3 when the REST API refuses the token: log in again', async () => {
      const tokenFile = join(dir, 'api-refresh-token');
      writeFileSync(tokenFile, 'cli-refresh-token-original-0123\n', { mode: 0o600 });
      const config = { snds: { refetchDays: 1, retries: 0, api: { baseUrl: `${server.url}/api`, tokenUrl: `${server.url}/token`, authorizeUrl: `${server.url}/authorize`, tokenFile } } };
      const result = await cli(['ingest', 'snds', '--format', 'json'], config);
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/SNDS API: the SNDS API refused the token \(HTTP 401\): log in again\. Run `repwatch snds login`/);
      expect(result.stderr + result.stdout).not.toContain(API_ACCESS);
      // The rotated refresh token was stored before the API was asked.
      expect(readFileSync(tokenFile, 'utf8').trim()).toBe('cli-refresh-token-rotated-0123');
    });

    it('snds links lists expiry date and days left, as a table and as JSON', async () => {
      const config = {
        snds: {
          feeds: [
            { name: 'fresh', dataUrl: `${server.url}/data?key=${KEY}`, dateParameter: true, linkCreatedOn: '2026-11-20' },
            { name: 'soon', dataUrl: `${server.url}/data?key=${KEY}`, dateParameter: true, linkCreatedOn: '2026-11-01' },
            { name: 'nodate', dataUrl: `${server.url}/data?key=${KEY}`, dateParameter: true },
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
      expect(all).not.toContain(API_ACCESS);
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
