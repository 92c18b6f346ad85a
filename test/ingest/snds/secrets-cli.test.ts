import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../../support/backends.js';
import { inspectCliDatabase, runCliCaptured } from '../../support/run-cli.js';
import { fixedClock } from '../../../lib/clock.js';
import { clearRegisteredSecrets } from '../../../lib/redact.js';
import type { Database } from '../../../db/connection.js';
import { dataExport, startServer, type TestServer } from './snds-server.js';

/**
 * Issue 3, end to end: link keys that the fixed `key=` pattern does not catch (under `id=`, with +, /
 * and =, which URLSearchParams re-encodes when the day is added; and in the path, shorter than 24
 * characters) appear in no output, no raw-download record, no rejection and no stored byte, in any
 * encoded form, also when the server echoes the link in a body that is not HTML.
 */

const ID_KEY = 'Qx7+9kLm/ZpR2w==';
const PATH_KEY = 'k7Qm2xV9pL4sT8wZr2';
const ECHO_KEY = 'Zt4+pQ/8mN2vXy7a+B==';
const clock = fixedClock('2026-11-27T06:00:00Z');

/** Every form a key can take: as written, decoded both ways, re-encoded by URLSearchParams and by
 * encodeURIComponent, percent-escapes in either case. */
function forms(value: string): string[] {
  const spaced = value.replace(/\+/g, ' ');
  const out = new Set<string>();
  for (const v of [value, spaced]) {
    out.add(v);
    out.add(encodeURIComponent(v));
    out.add(new URLSearchParams([['x', v]]).toString().slice(2));
  }
  for (const form of [...out]) out.add(form.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()));
  return [...out];
}
/** The runs of each key that no encoding changes (a leaked fragment shows as one of them). */
const FRAGMENTS = ['9kLm', 'ZpR2w', PATH_KEY, 'pQ', 'mN2vXy7a'].filter((f) => f.length >= 4);
const ALL_FORMS = [...forms(ID_KEY), ...forms(PATH_KEY), ...forms(ECHO_KEY), ...FRAGMENTS];

let server: TestServer;
beforeAll(async () => {
  const rows = (ip: string) => dataExport('2026-11-26', [`${ip}.1`, `${ip}.2`]);
  server = await startServer({
    // Good data, plus a bad line that quotes the request (the key as the server received it).
    '/auto/data': (req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end(`${rows('10.31.0')}not-an-ip,11/26/2026 4:00 PM,,1,1,1,GREEN,< 0.1%,,,0,,,requested ${req.url}\r\n`),
    '/auto/status': (_req, res) => res.writeHead(200).end('10.31.0.0,10.31.0.255,Yes,SpamHaus SBL/XBL\r\n'),
    [`/SNDS/Auto/${PATH_KEY}/data`]: (_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(rows('10.32.0')),
    [`/SNDS/Auto/${PATH_KEY}/status`]: (_req, res) => res.writeHead(200).end(''),
    // Expired links answering 200 with something that is not HTML and echoes the link.
    '/echo/text': (req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`Invalid or expired link http://${req.headers.host}${req.url}`),
    '/echo/json': (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'expired', link: `http://${req.headers.host}${req.url}` })),
    [`/SNDS/Auto/${PATH_KEY}/echo`]: (req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`no such link: ${req.url}`),
  });
});
afterAll(async () => {
  await server.close();
  clearRegisteredSecrets();
});

for (const backend of backends()) {
  const label = backend.available ? `link keys under any name, in the path, echoed [${backend.name}]` : `link keys [${backend.name}: SKIPPED, ${backend.skipReason}]`;
  describe.skipIf(!backend.available)(label, () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-secrets-cli-'));
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
    const snds = (feeds: object[]) => ({ snds: { feeds, refetchDays: 1, retries: 0, connectTimeoutMs: 2000, timeoutMs: 5000 } });

    beforeAll(async () => {
      clearRegisteredSecrets();
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

    it('loads from a link keyed under id= and from one keyed in its path', async () => {
      const result = await cli(
        ['ingest', 'snds', '--format', 'json'],
        snds([
          { name: 'idkey', dataUrl: `${server.url}/auto/data?id=${ID_KEY}`, statusUrl: `${server.url}/auto/status?id=${ID_KEY}`, linkCreatedOn: '2026-11-10', dateParameter: true },
          { name: 'pathkey', dataUrl: `${server.url}/SNDS/Auto/${PATH_KEY}/data`, statusUrl: `${server.url}/SNDS/Auto/${PATH_KEY}/status`, linkCreatedOn: '2026-11-10', dateParameter: true },
        ]),
      );
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout);
      expect(summary.rowsLoaded).toBeGreaterThanOrEqual(5);
      expect(summary.rowsRejected).toBe(1);
      // The keys really travelled, exactly as configured (the date is appended, nothing re-encoded).
      expect(server.requests.some((r) => r.url.includes(`id=${ID_KEY}&date=`))).toBe(true);
      expect(server.requests.some((r) => r.url.startsWith(`/SNDS/Auto/${PATH_KEY}/`))).toBe(true);
    });

    it('a one-off --url keyed under id= and in the path', async () => {
      expect((await cli(['ingest', 'snds', '--url', `${server.url}/auto/data?id=${ID_KEY}&date=112526`, '--feed', 'adhoc', '--format', 'table'])).code).toBe(0);
      expect((await cli(['ingest', 'snds', '--url', `${server.url}/SNDS/Auto/${PATH_KEY}/data`, '--feed', 'adhoc-path', '--format', 'table'])).code).toBe(0);
    });

    it('links that answer 200 with text or JSON echoing the link (key included) are not data', async () => {
      const before = server.requests.filter((r) => r.url.startsWith('/echo/')).length;
      const result = await cli(
        ['ingest', 'snds', '--format', 'json'],
        snds([
          { name: 'echotext', dataUrl: `${server.url}/echo/text?id=${ECHO_KEY}`, linkCreatedOn: '2026-11-10', dateParameter: true },
          { name: 'echojson', dataUrl: `${server.url}/echo/json?id=${ECHO_KEY}`, linkCreatedOn: '2026-11-10', dateParameter: true },
          { name: 'echopath', dataUrl: `${server.url}/SNDS/Auto/${PATH_KEY}/echo`, linkCreatedOn: '2026-11-10', dateParameter: true },
        ]),
      );
      expect(result.code).not.toBe(0);
      expect(server.requests.filter((r) => r.url.startsWith('/echo/')).length - before).toBe(2);
    });

    it('no form of any key appears in stdout, stderr, logs, raw_download (location, detail), rejections or the stored bytes', async () => {
      const all = output.join('\n');
      expect(all.length).toBeGreaterThan(1000);
      expect(all).toContain('[REDACTED]');
      // The portal's own words are not redacted.
      expect(all).toContain('/SNDS/Auto/');
      const stored = await inspect(async (db) => ({
        downloads: await db.query<{ row: string; location: string; detail: string | null }>('select d::text as row, location, detail from repwatch.raw_download d'),
        rejections: await db.query<{ row: string }>('select r::text as row from repwatch.rejection r'),
        bytes: (await db.query<{ data: Uint8Array }>('select data from repwatch.raw_download_chunk')).map((c) => Buffer.from(c.data).toString('latin1')),
      }));
      expect(stored.downloads.length).toBeGreaterThanOrEqual(9);
      expect(stored.rejections.length).toBeGreaterThan(0);
      expect(stored.downloads.map((d) => d.location)).toContain(`${server.url}/auto/data?id=[REDACTED]&date=112626`);
      expect(stored.downloads.map((d) => d.location)).toContain(`${server.url}/SNDS/Auto/[REDACTED]/data?date=112626`);
      // The echoed links were kept, redacted.
      expect(stored.bytes.join('\n')).toMatch(/Invalid or expired link http:\/\/127\.0\.0\.1:\d+\/echo\/text\?id=\[REDACTED\]/);
      expect(stored.bytes.join('\n')).toMatch(/requested \/auto\/data\?id=\[REDACTED\]/);
      const texts = [all, ...stored.downloads.map((d) => d.row), ...stored.rejections.map((r) => r.row), ...stored.bytes];
      for (const text of texts) for (const form of ALL_FORMS) expect(text, `"${form}" leaked`).not.toContain(form);
    });
  });
}
