import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { defaultConfig } from '../../../config/load-config.js';
import { fixedClock } from '../../../lib/clock.js';
import { ingestSndsFiles } from '../../../ingest/snds/ingest-files.js';
import { readStoredDownload, registerDownload } from '../../../ingest/snds/raw-store.js';
import { loadDataExport } from '../../../ingest/snds/load-data-export.js';
import { parseDataExport } from '../../../ingest/snds/parse-data-export.js';
import { dataExport } from './snds-server.js';

const fixture = (name: string) => new URL(`../../fixtures/snds/${name}`, import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-load-'));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const config = defaultConfig();
const clock = fixedClock('2026-11-27T06:00:00Z');

describeEachBackend('SNDS loading', (db) => {
  const load = (feed: string, files: { kind: 'ip_data' | 'ip_status'; path: string }[], timezone = 'UTC') =>
    ingestSndsFiles({ database: db(), config, clock, feed, timezone, files });
  const count = async (sql: string, params: unknown[] = []) => (await db().query<{ n: number }>(sql, params))[0]!.n;

  it('stores the file as received before parsing and loads the reference rows', async () => {
    const result = await load('ref', [{ kind: 'ip_data', path: fixture('ip-data-reference.csv') }]);
    expect(result.inputs[0]!.outcome).toBe('loaded');
    expect(result.rowsLoaded).toBe(3);
    expect(result.days).toEqual(['2019-12-31', '2026-02-10']);
    const [download] = await db().query<{ id: number; sha256: string; byte_size: number; source: string; outcome: string; location: string }>(
      `select id, sha256, byte_size, source, outcome, location from repwatch.raw_download where feed = 'ref'`,
    );
    const bytes = readFileSync(fixture('ip-data-reference.csv'));
    expect(download).toMatchObject({ sha256: createHash('sha256').update(bytes).digest('hex'), byte_size: bytes.length, source: 'file', outcome: 'loaded' });
    const stored: Buffer[] = [];
    for await (const chunk of readStoredDownload(db(), download!.id)) stored.push(chunk);
    expect(Buffer.concat(stored).equals(bytes)).toBe(true);
    const rows = await db().query<Record<string, unknown>>(`select * from repwatch.snds_row_timed where feed = 'ref' order by line_no`);
    expect(rows.map((r) => [r.ip, r.day, r.activity_start_raw, r.message_recipients, r.trap_hits, r.jmr_p1_sender])).toEqual([
      ['1.1.1.0', '2019-12-31', '12/31/2019 8:00 AM', 13025, 41, null],
      ['1.1.1.1', '2019-12-31', '12/31/2019 9:00 PM', 47384, 40, null],
      ['149.72.205.104', '2026-02-10', '2/10/2026 4:00 PM', 265902, 0, 'Abuse reported for: deals@d.slickdeals.net'],
    ]);
    expect((rows[0]!.activity_start as Date).toISOString()).toBe('2019-12-31T08:00:00.000Z');
    expect((rows[1]!.trap_end as Date).toISOString()).toBe('2020-09-29T20:09:00.000Z');
    expect(rows[2]!.complaint_rate_high).toBe(0.001);
  });

  it('recognises identical content and does not parse it twice', async () => {
    const again = await load('ref', [{ kind: 'ip_data', path: fixture('ip-data-reference.csv') }]);
    expect(again.inputs[0]!.outcome).toBe('duplicate');
    expect(again.rowsLoaded).toBe(0);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'ref'`)).toBe(3);
  });

  it('replaces a re-fetched day and never double counts overlapping files', async () => {
    const a = write('a.csv', dataExport('2026-11-01', ['10.1.0.1', '10.1.0.2']) + dataExport('2026-11-02', ['10.1.0.1', '10.1.0.2']));
    const b = write('b.csv', dataExport('2026-11-02', ['10.1.0.1'], { recipients: 7 }) + dataExport('2026-11-03', ['10.1.0.1']));
    expect((await load('overlap', [{ kind: 'ip_data', path: a }])).rowsLoaded).toBe(4);
    const second = await load('overlap', [{ kind: 'ip_data', path: b }]);
    expect(second.rowsLoaded).toBe(2);
    expect(second.rowsReplaced).toBe(2);
    const perDay = await db().query<{ day: string; n: number; recipients: number }>(
      `select day, count(*)::int as n, sum(message_recipients)::int as recipients from repwatch.snds_row where feed = 'overlap' group by day order by day`,
    );
    expect(perDay).toEqual([
      { day: '2026-11-01', n: 2, recipients: 2000 },
      { day: '2026-11-02', n: 1, recipients: 7 },
      { day: '2026-11-03', n: 1, recipients: 1000 },
    ]);
    // Loading A again is not a duplicate any more (B replaced one of its days): it puts day 2 back.
    const third = await load('overlap', [{ kind: 'ip_data', path: a }]);
    expect(third.inputs[0]!.outcome).toBe('loaded');
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'overlap'`)).toBe(5);
    // Another feed's rows for the same days are untouched.
    await load('other', [{ kind: 'ip_data', path: b }]);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'overlap' and day = '2026-11-02'`)).toBe(2);
  });

  it('two loads of one feed at once take turns: the days both hold end up with one export\'s rows, never both', async () => {
    const a = dataExport('2026-11-11', ['10.8.0.1', '10.8.0.2']);
    const b = dataExport('2026-11-11', ['10.8.0.1'], { recipients: 7 });
    // Each load waits before its commit until the other has reached the same point (or 2 s have passed:
    // a load that takes turns cannot get there while the other holds the feed). Without turns both
    // read the days held before either commits, and day 11 keeps all three rows.
    let arrived = 0;
    const bothThere = () => new Promise<void>((resolve) => {
      arrived += 1;
      const started = Date.now();
      const poll = setInterval(() => {
        if (arrived >= 2 || Date.now() - started > 2000) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    const start = async (text: string) => {
      const bytes = Buffer.from(text);
      const stored = await registerDownload(db(), { source: 'file', kind: 'ip_data', feed: 'race', location: 'race', fetchedAt: new Date() }, { sha256: createHash('sha256').update(bytes).digest('hex'), byteSize: bytes.length });
      return loadDataExport(db(), Readable.from([bytes]), { feed: 'race', timezone: 'UTC', downloadId: stored.id, location: 'race', beforeCommit: bothThere });
    };
    const results = await Promise.all([start(a), start(b)]);
    expect(results.map((r) => r.outcome)).toEqual(['loaded', 'loaded']);
    const rows = await db().query<{ n: number; downloads: number }>(
      `select count(*)::int as n, count(distinct download_id)::int as downloads from repwatch.snds_row where feed = 'race' and day = '2026-11-11'`,
    );
    expect(rows[0]!.downloads).toBe(1);
    expect([1, 2]).toContain(rows[0]!.n);
    const [held] = await db().query<{ download_id: number; row_count: number }>(`select download_id, row_count from repwatch.snds_feed_day where feed = 'race'`);
    expect(held!.row_count).toBe(rows[0]!.n);
  });

  it('warns when an input of a run replaces a day an earlier input of the same run loaded (parts of one day in two files)', async () => {
    const part1 = write('part1.csv', dataExport('2026-11-08', ['10.4.0.1']));
    const part2 = write('part2.csv', dataExport('2026-11-08', ['10.4.0.2']));
    const result = await load('parts', [{ kind: 'ip_data', path: part1 }, { kind: 'ip_data', path: part2 }]);
    expect(result.warnings).toEqual([
      `${part2} replaced 1 day(s) that ${part1} loaded earlier in this run (2026-11-08): each day is taken whole from the last export holding it; to load parts of one day, join them into one file`,
    ]);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'parts'`)).toBe(1);
    // Separate runs replacing a day is the documented refresh: no warning.
    expect((await load('parts', [{ kind: 'ip_data', path: part1 }])).warnings).toEqual([]);
  });

  it('records rejected rows with location, line, reason and raw line, and loads the rest', async () => {
    const path = write('mixed.csv', `${dataExport('2026-11-05', ['10.2.0.1'])}300.1.1.1,11/5/2026 4:00 PM,11/6/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,\r\n${dataExport('2026-11-05', ['10.2.0.2'])}`);
    const result = await load('mixed', [{ kind: 'ip_data', path }]);
    expect(result.rowsLoaded).toBe(2);
    expect(result.rowsRejected).toBe(1);
    const rejections = await db().query<{ source: string; location: string; line_no: number; reason: string; raw: string }>(
      `select source, location, line_no, reason, raw from repwatch.rejection where location = $1`,
      [path],
    );
    expect(rejections).toEqual([
      { source: 'snds_data', location: path, line_no: 2, reason: expect.stringMatching(/IP address/), raw: '300.1.1.1,11/5/2026 4:00 PM,11/6/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,' },
    ]);
  });

  it('a line repeating the IP and activity start of an earlier one is rejected naming that line, on either parsing path; an export joined three times still loads', async () => {
    const day = dataExport('2026-11-06', ['10.3.0.1', '10.3.0.2']);
    // A quoted field sends a line down the full parser; the same pair there is a repeat too.
    const quoted = '"10.3.0.1","11/6/2026 4:00 PM","11/7/2026 3:00 PM",5,5,5,GREEN,"< 0.1%",,,0,,,\r\n';
    const path = write('joined.csv', day + day + quoted + day);
    const result = await load('joined', [{ kind: 'ip_data', path }]);
    expect(result.inputs[0]!.outcome).toBe('loaded');
    expect(result.rowsLoaded).toBe(2);
    expect(result.rowsRejected).toBe(5);
    const rejections = await db().query<{ line_no: number; reason: string }>(`select line_no, reason from repwatch.rejection where location = $1 order by line_no`, [path]);
    expect(rejections.map((r) => r.line_no)).toEqual([3, 4, 5, 6, 7]);
    expect(rejections[0]!.reason).toBe('the same IP and activity start as line 1 (a repeated line, or overlapping exports joined): not counted twice');
    expect(rejections[2]!.reason).toMatch(/^the same IP and activity start as line 1 /);
    const rows = await db().query<{ recipients: number }>(`select sum(message_recipients)::int as recipients from repwatch.snds_row where feed = 'joined'`);
    expect(rows[0]!.recipients).toBe(2000);
    // Another activity period of the same IP on the same day is not a repeat.
    const other = write('two-periods.csv', '10.3.0.9,11/7/2026 12:00 AM,11/7/2026 11:59 AM,1,1,1,GREEN,< 0.1%,,,0,,,\r\n10.3.0.9,11/7/2026 12:00 PM,11/7/2026 11:59 PM,1,1,1,GREEN,< 0.1%,,,0,,,\r\n');
    expect((await load('periods', [{ kind: 'ip_data', path: other }])).rowsLoaded).toBe(2);
  });

  it('fails an input whose lines are mostly bad, keeping its bytes and saying why', async () => {
    const path = write('not-snds.csv', 'name,email\nalice,a@example.com\nbob,b@example.com\n');
    const result = await load('junk', [{ kind: 'ip_data', path }]);
    expect(result.inputs[0]!.outcome).toBe('failed');
    expect(result.failures[0]).toMatch(/probably not an SNDS IP Data export/);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'junk'`)).toBe(0);
    expect(await count(`select count(*)::int as n from repwatch.raw_download where feed = 'junk' and outcome = 'failed' and byte_size > 0`)).toBe(1);
    expect(await count(`select count(*)::int as n from repwatch.rejection where location = $1 and line_no is null`, [path])).toBe(1);
  });

  it('stores quoted comments as the parser reads them, whichever path a line takes', async () => {
    const lines = [
      '10.6.0.1,11/8/2026 4:00 PM,11/9/2026 3:00 PM,5,5,5,GREEN,< 0.1%,,,0,,,"Abuse reported for: a@example.net, b@example.net"',
      '10.6.0.2,11/8/2026 4:00 PM,11/9/2026 3:00 PM,5,5,5,GREEN,< 0.1%,,,0,,,"say ""hi"", twice"',
      '10.6.0.3,11/8/2026 4:00 PM,11/9/2026 3:00 PM,5,5,5,green,< 0.1%,,,0,,," padded, "',
      '10.6.0.4,11/8/2026 4:00 PM,11/9/2026 3:00 PM,5,5,5,GREEN,< 0.1%,,,0,,,""',
    ];
    const text = `${lines.join('\r\n')}\r\n`;
    await load('quoted', [{ kind: 'ip_data', path: write('quoted.csv', text) }]);
    const parsed = parseDataExport(text, { timezone: 'UTC' }).rows.map((r) => [r.ip, r.comments, r.filterResult]);
    const stored = await db().query<{ ip: string; comments: string | null; filter_result: string }>(`select host(ip) as ip, comments, filter_result from repwatch.snds_row where feed = 'quoted' order by line_no`);
    expect(stored.map((r) => [r.ip, r.comments, r.filter_result])).toEqual(parsed);
    expect(parsed[1]![1]).toBe('say "hi", twice');
  });

  it('passes UTF-8, invalid bytes and a split BOM through intact, however the bytes arrive', async () => {
    // Bytes cut every 7: inside the BOM, inside CRLF and inside multi-byte characters. The feed's own
    // name is not ASCII either, so no stretch can be written back as latin1.
    const text =
      '\uFEFF10.7.0.1,11/8/2026 4:00 PM,11/9/2026 3:00 PM,5,5,5,GREEN,< 0.1%,,,0,mäil.example.de,,Beschwerde für Ärger\r\n' +
      '10.7.0.2,11/8/2026 4:00 PM,11/9/2026 3:00 PM,6,6,6,GREEN,< 0.1%,,,0,plain.example,,\r\n' +
      '10.7.0.3,11/8/2026 4:00 PM,11/9/2026 3:00 PM,7,7,7,RED,>4%,,,0,日本.example,,"x, 😀"\r\n';
    const bytes = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from('10.7.0.4,11/8/2026 4:00 PM,11/9/2026 3:00 PM,8,8,8,GREEN,< 0.1%,,,0,bad\xff.example,,\r\n', 'latin1')]);
    const stored = await registerDownload(db(), { source: 'file', kind: 'ip_data', feed: 'flüsse', location: 'chunks', fetchedAt: new Date() }, { sha256: '', byteSize: bytes.length });
    const pieces = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7));
    const result = await loadDataExport(db(), Readable.from(pieces), { feed: 'flüsse', timezone: 'UTC', downloadId: stored.id, location: 'chunks' });
    expect(result).toMatchObject({ outcome: 'loaded', rowsLoaded: 4, rowsRejected: 0 });
    const rows = await db().query<{ feed: string; helo: string | null; comments: string | null }>(
      `select feed, sample_helo as helo, comments from repwatch.snds_row where download_id = $1 order by line_no`,
      [stored.id],
    );
    expect(rows).toEqual([
      { feed: 'flüsse', helo: 'mäil.example.de', comments: 'Beschwerde für Ärger' },
      { feed: 'flüsse', helo: 'plain.example', comments: null },
      { feed: 'flüsse', helo: '日本.example', comments: 'x, 😀' },
      { feed: 'flüsse', helo: 'bad\uFFFD.example', comments: null },
    ]);
    // The same text through the pure parser gives the same values.
    const parsed = parseDataExport(bytes.toString('utf8'), { timezone: 'UTC' }).rows.map((r) => ({ feed: 'flüsse', helo: r.sampleHelo, comments: r.comments }));
    expect(parsed).toEqual(rows);
  });

  it('a folder or a missing path given as a file fails with the reason and records no download', async () => {
    const result = await load('notafile', [
      { kind: 'ip_data', path: dir },
      { kind: 'ip_status', path: join(dir, 'missing.csv') },
    ]);
    expect(result.inputs.map((i) => [i.location, i.outcome, i.detail])).toEqual([
      [dir, 'failed', 'is a folder, not an export file'],
      [join(dir, 'missing.csv'), 'failed', 'no such file'],
    ]);
    expect(result.failures).toHaveLength(2);
    expect(await count(`select count(*)::int as n from repwatch.raw_download where feed = 'notafile'`)).toBe(0);
  });

  it('reads stdin ("-"), spooled to a file first, and records the source as stdin', async () => {
    const stdin = Readable.from([Buffer.from(dataExport('2026-11-07', ['10.4.0.1']).slice(0, 20)), Buffer.from(dataExport('2026-11-07', ['10.4.0.1']).slice(20))]);
    const result = await ingestSndsFiles({ database: db(), config, clock, feed: 'piped', timezone: 'UTC', files: [{ kind: 'ip_data', path: '-' }], stdin });
    expect(result.rowsLoaded).toBe(1);
    expect(await db().query(`select source, location from repwatch.raw_download where feed = 'piped'`)).toEqual([{ source: 'stdin', location: 'stdin' }]);
  });

  it('reads timestamps in the feed zone: the stored instants match the parser', async () => {
    const text = '10.3.0.1,7/1/2026 11:30 PM,7/2/2026 3:00 PM,5,5,5,GREEN,< 0.1%,7/1/2026 12:15 AM,7/2/2026 12:45 PM,1,,,\n';
    const path = write('la.csv', text);
    await load('la', [{ kind: 'ip_data', path }], 'America/Los_Angeles');
    const parsed = parseDataExport(text, { timezone: 'America/Los_Angeles' }).rows[0]!;
    const [row] = await db().query<{ day: string; activity_start: Date; trap_start: Date; timezone: string }>(`select day, activity_start, trap_start, timezone from repwatch.snds_row_timed where feed = 'la'`);
    expect(row!.day).toBe('2026-07-01');
    expect(row!.timezone).toBe('America/Los_Angeles');
    expect(row!.activity_start.toISOString()).toBe(parsed.activityStart);
    expect(row!.trap_start.toISOString()).toBe(parsed.trapStart);
  });

  it('keeps every IP Status download as history and shows the latest in analytics.ip_status', async () => {
    const first = await load('st', [{ kind: 'ip_status', path: fixture('ip-status-reference.csv') }]);
    expect(first.inputs[0]).toMatchObject({ outcome: 'loaded', rowsLoaded: 3 });
    const current = await db().query<{ first_ip: string; last_ip: string; blocked: boolean; details: string; fetched_at: Date }>(
      `select * from analytics.ip_status s where s.first_ip << '176.0.0.0/8'::inet or s.first_ip = '1.1.1.0'::inet order by first_ip`,
    );
    expect(current.map((r) => [r.first_ip, r.last_ip, r.blocked])).toEqual([
      ['1.1.1.0', '1.1.1.1', true],
      ['176.119.155.0', '176.119.155.255', true],
    ]);
    const empty = write('status-empty.csv', '');
    expect((await load('st', [{ kind: 'ip_status', path: empty }])).inputs[0]!.outcome).toBe('empty');
    expect(await count(`select count(*)::int as n from analytics.ip_status s join repwatch.raw_download d on d.fetched_at = s.fetched_at where d.feed = 'st'`)).toBe(0);
    expect(await count(`select count(*)::int as n from repwatch.snds_status_range where feed = 'st'`)).toBe(3);
  });
});

