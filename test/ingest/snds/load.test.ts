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
import { cutOffLastLine, loadDataExport } from '../../../ingest/snds/load-data-export.js';
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
    // Its own feed: this test does not lean on the load of the test before it.
    const first = await load('ref-again', [{ kind: 'ip_data', path: fixture('ip-data-reference.csv') }]);
    expect(first.inputs[0]!.outcome).toBe('loaded');
    const again = await load('ref-again', [{ kind: 'ip_data', path: fixture('ip-data-reference.csv') }]);
    expect(again.inputs[0]!.outcome).toBe('duplicate');
    expect(again.rowsLoaded).toBe(0);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'ref-again'`)).toBe(3);
  });

  it('overlapping files never double count: a row replaces the same IP and period, the other rows of the day stay', async () => {
    const a = write('a.csv', dataExport('2026-11-01', ['10.1.0.1', '10.1.0.2']) + dataExport('2026-11-02', ['10.1.0.1', '10.1.0.2']));
    const b = write('b.csv', dataExport('2026-11-02', ['10.1.0.1'], { recipients: 7 }) + dataExport('2026-11-03', ['10.1.0.1']));
    expect((await load('overlap', [{ kind: 'ip_data', path: a }])).rowsLoaded).toBe(4);
    const second = await load('overlap', [{ kind: 'ip_data', path: b }]);
    expect(second.rowsLoaded).toBe(2);
    expect(second.rowsReplaced).toBe(1);
    const perDay = await db().query<{ day: string; n: number; recipients: number }>(
      `select day, count(*)::int as n, sum(message_recipients)::int as recipients from repwatch.snds_row where feed = 'overlap' group by day order by day`,
    );
    expect(perDay).toEqual([
      { day: '2026-11-01', n: 2, recipients: 2000 },
      { day: '2026-11-02', n: 2, recipients: 1007 },
      { day: '2026-11-03', n: 1, recipients: 1000 },
    ]);
    // snds_feed_day counts what the day holds, whichever downloads its rows came from.
    expect(await db().query(`select day, row_count from repwatch.snds_feed_day where feed = 'overlap' order by day`)).toEqual([
      { day: '2026-11-01', row_count: 2 },
      { day: '2026-11-02', row_count: 2 },
      { day: '2026-11-03', row_count: 1 },
    ]);
    // Loading A again is not a duplicate any more (B took over one of its days): it puts its row back.
    const third = await load('overlap', [{ kind: 'ip_data', path: a }]);
    expect(third.inputs[0]!.outcome).toBe('loaded');
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'overlap'`)).toBe(5);
    // Another feed's rows for the same days are untouched.
    await load('other', [{ kind: 'ip_data', path: b }]);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'overlap' and day = '2026-11-02'`)).toBe(2);
  });

  it('two loads of one feed at once take turns: a row both hold is kept once, never twice (on PGlite, whose one connection serialises them anyway, this cannot fail)', async () => {
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
    // a holds .1 and .2, b holds .1: whichever went second, .1 is there once and .2 once.
    const rows = await db().query<{ n: number; ips: number }>(
      `select count(*)::int as n, count(distinct ip)::int as ips from repwatch.snds_row where feed = 'race' and day = '2026-11-11'`,
    );
    expect(rows[0]).toEqual({ n: 2, ips: 2 });
    const [held] = await db().query<{ download_id: number; row_count: number }>(`select download_id, row_count from repwatch.snds_feed_day where feed = 'race'`);
    expect(held!.row_count).toBe(rows[0]!.n);
  });

  it('keeps both parts of one day given in two files, and warns when a later input of a run replaces rows an earlier one loaded', async () => {
    const part1 = write('part1.csv', dataExport('2026-11-08', ['10.4.0.1']));
    const part2 = write('part2.csv', dataExport('2026-11-08', ['10.4.0.2']));
    const parts = await load('parts', [{ kind: 'ip_data', path: part1 }, { kind: 'ip_data', path: part2 }]);
    expect(parts.warnings).toEqual([]);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'parts'`)).toBe(2);
    // Overlapping files in one run: the later one's row of the same IP and period is kept, and said.
    const again = write('part1-again.csv', dataExport('2026-11-08', ['10.4.0.1'], { recipients: 5 }));
    const overlap = await load('parts', [{ kind: 'ip_data', path: part2 }, { kind: 'ip_data', path: again }]);
    expect(overlap.warnings).toEqual([]);
    const twice = await load('parts2', [{ kind: 'ip_data', path: part1 }, { kind: 'ip_data', path: again }]);
    expect(twice.warnings).toEqual([
      `${again} replaced 1 stored row(s) (same IP and activity start) on 1 day(s) that ${part1} also loaded earlier in this run (2026-11-08): the later input's values are kept`,
    ]);
    expect(await db().query(`select host(ip) as ip, message_recipients as n from repwatch.snds_row where feed = 'parts2'`)).toEqual([{ ip: '10.4.0.1', n: 5 }]);
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
    // One instant written three ways (padding and a leading zero take the full parser, 24-hour time
    // the fast one's shape test fails too): one row, two repeats.
    const spellings = write(
      'spellings.csv',
      '10.3.0.22,2/13/2026 12:00 AM,2/13/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n' +
        ' 10.3.0.22 ,02/13/2026 12:00 AM,2/13/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n' +
        '10.3.0.22,2/13/2026 0:00,2/13/2026 23:59,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n' +
        '10.3.0.22,2/13/2026 12:00 PM,2/13/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n',
    );
    const spelt = await load('spellings', [{ kind: 'ip_data', path: spellings }]);
    expect([spelt.rowsLoaded, spelt.rowsRejected]).toEqual([2, 2]);
    expect(await db().query(`select line_no, reason from repwatch.rejection where location = $1 order by line_no`, [spellings])).toEqual([
      { line_no: 2, reason: expect.stringMatching(/^the same IP and activity start as line 1 /) },
      { line_no: 3, reason: expect.stringMatching(/^the same IP and activity start as line 1 /) },
    ]);
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
    // The second line starts in the autumn overlap (1:30 AM happens twice): both read it as PostgreSQL does.
    const text = '10.3.0.1,7/1/2026 11:30 PM,7/2/2026 3:00 PM,5,5,5,GREEN,< 0.1%,7/1/2026 12:15 AM,7/2/2026 12:45 PM,1,,,\n10.3.0.2,11/1/2026 1:30 AM,3/8/2026 2:30 AM,5,5,5,GREEN,< 0.1%,,,0,,,\n';
    const path = write('la.csv', text);
    await load('la', [{ kind: 'ip_data', path }], 'America/Los_Angeles');
    const parsed = parseDataExport(text, { timezone: 'America/Los_Angeles' }).rows[0]!;
    const [row] = await db().query<{ day: string; activity_start: Date; trap_start: Date; timezone: string }>(`select day, activity_start, trap_start, timezone from repwatch.snds_row_timed where feed = 'la' and line_no = 1`);
    expect(row!.day).toBe('2026-07-01');
    expect(row!.timezone).toBe('America/Los_Angeles');
    expect(row!.activity_start.toISOString()).toBe(parsed.activityStart);
    expect(row!.trap_start.toISOString()).toBe(parsed.trapStart);
    const overlap = parseDataExport(text, { timezone: 'America/Los_Angeles' }).rows[1]!;
    expect([overlap.activityStart, overlap.activityEnd]).toEqual(['2026-11-01T09:30:00.000Z', '2026-03-08T10:30:00.000Z']);
    const [stored] = await db().query<{ activity_start: Date; activity_end: Date }>(`select activity_start, activity_end from repwatch.snds_row_timed where feed = 'la' and line_no = 2`);
    expect([stored!.activity_start.toISOString(), stored!.activity_end.toISOString()]).toEqual([overlap.activityStart, overlap.activityEnd]);
  });

  it('a later export\'s few rows of a day (periods that began the evening before) are merged into that day, never replace it', async () => {
    const line = (ip: string, start: string, end: string, n: number) => `${ip},${start},${end},${n},${n},${n},GREEN,< 0.1%,,,0,,,\r\n`;
    const day10 = write('day10.csv', line('10.0.0.1', '2/10/2026 12:00 AM', '2/10/2026 11:59 PM', 1000) + line('10.0.0.2', '2/10/2026 12:00 AM', '2/10/2026 11:59 PM', 2000) + line('10.0.0.3', '2/10/2026 4:00 PM', '2/11/2026 3:00 PM', 3000));
    const day11 = write('day11.csv', line('10.0.0.1', '2/11/2026 12:00 AM', '2/11/2026 11:59 PM', 1100) + line('10.0.0.2', '2/11/2026 12:00 AM', '2/11/2026 11:59 PM', 2100) + line('10.0.0.4', '2/10/2026 10:00 PM', '2/11/2026 9:00 PM', 500));
    const perDay = () => db().query<{ day: string; ips: string[] }>(`select day::text, array_agg(host(ip) order by ip) as ips from repwatch.snds_row where feed = 'stray' group by day order by day`);
    const expected = [
      { day: '2026-02-10', ips: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'] },
      { day: '2026-02-11', ips: ['10.0.0.1', '10.0.0.2'] },
    ];
    await load('stray', [{ kind: 'ip_data', path: day10 }]);
    const second = await load('stray', [{ kind: 'ip_data', path: day11 }]);
    expect(second.rowsReplaced).toBe(0);
    expect(second.warnings).toEqual([]);
    expect(await perDay()).toEqual(expected);
    // The other order ends the same: the day's own export takes it whole and keeps the merged row.
    await db().query(`delete from repwatch.snds_row where feed = 'stray'`);
    await db().query(`delete from repwatch.snds_feed_day where feed = 'stray'`);
    await load('stray', [{ kind: 'ip_data', path: write('day11b.csv', readFileSync(day11, 'utf8') + '\r\n') }]);
    await load('stray', [{ kind: 'ip_data', path: write('day10b.csv', readFileSync(day10, 'utf8') + '\r\n') }]);
    expect(await perDay()).toEqual(expected);
    // A revised file replaces the rows of the same IP and start, also a neighbour's row written another
    // way; rows it does not have stay (a file never says a period did not happen).
    const revised = write('day10c.csv', line('10.0.0.1', '2/10/2026 12:00 AM', '2/10/2026 11:59 PM', 7) + line('10.0.0.4', '02/10/2026 22:00', '2/11/2026 9:00 PM', 9));
    await load('stray', [{ kind: 'ip_data', path: revised }]);
    const rows = await db().query<{ ip: string; n: number }>(`select host(ip) as ip, message_recipients as n from repwatch.snds_row where feed = 'stray' and day = '2026-02-10' order by ip`);
    expect(rows).toEqual([{ ip: '10.0.0.1', n: 7 }, { ip: '10.0.0.2', n: 2000 }, { ip: '10.0.0.3', n: 3000 }, { ip: '10.0.0.4', n: 9 }]);
  });

  it('a file with a small part of a day the feed holds is merged into it, not taken for the whole day', async () => {
    const ips = Array.from({ length: 20 }, (_, i) => `10.5.0.${i + 1}`);
    await load('partial', [{ kind: 'ip_data', path: write('full.csv', dataExport('2026-11-09', ips)) }]);
    const part = await load('partial', [{ kind: 'ip_data', path: write('part.csv', dataExport('2026-11-09', ['10.5.0.1'], { recipients: 7 })) }]);
    expect(part.rowsReplaced).toBe(1);
    expect(part.warnings).toEqual([]);
    const rows = await db().query<{ n: number; recipients: number }>(`select count(*)::int as n, sum(message_recipients)::int as recipients from repwatch.snds_row where feed = 'partial'`);
    expect(rows[0]).toEqual({ n: 20, recipients: 19 * 1000 + 7 });
  });

  it('fails an input that ends inside a line (a cut-off download) and keeps the day it would have replaced', async () => {
    const good = dataExport('2026-11-12', ['10.9.0.1', '10.9.0.2', '10.9.0.3']);
    await load('cut', [{ kind: 'ip_data', path: write('cut-good.csv', good) }]);
    const cut = (dataExport('2026-11-12', ['10.9.0.1', '10.9.0.2'], { recipients: 5 }) + good.split('\r\n')[2]!).slice(0, -40);
    const result = await load('cut', [{ kind: 'ip_data', path: write('cut.csv', cut) }]);
    expect(result.inputs[0]!.outcome).toBe('failed');
    expect(result.failures[0]).toMatch(/the input ends inside a line \(no line break after its last line, which has \d+ of 14 fields: "10\.9\.0\.3,[^"]*"\): a cut-off download or file; nothing of it loaded/);
    expect(await count(`select sum(message_recipients)::int as n from repwatch.snds_row where feed = 'cut'`)).toBe(3000);
    // A complete last line without a line break is fine, also when it is a comment quoted over two lines.
    expect((await load('cut2', [{ kind: 'ip_data', path: write('no-eol.csv', good.trimEnd()) }])).rowsLoaded).toBe(3);
    const quoted = `${good}10.9.0.4,11/12/2026 4:00 PM,11/13/2026 3:00 PM,5,5,5,GREEN,< 0.1%,,,0,,,"Abuse reported for:\r\na@b.example"`;
    expect((await load('cut3', [{ kind: 'ip_data', path: write('quoted-no-eol.csv', quoted) }])).rowsLoaded).toBe(4);
    expect(cutOffLastLine(Buffer.from(quoted))).toBeNull();
    expect(cutOffLastLine(Buffer.from(`${good}10.9.0.4,11/12/2026 4:00 PM,11/13/2026 3:00 PM,5,5,5,GREEN,< 0.1%,,,0,,,"Abuse rep`))).toMatch(/ends inside a line/);
  });

  it('fails an input with a 5 MB line without a line break, keeping its bytes, the reason and the rejections before it; the rest is not read', async () => {
    const good = dataExport('2026-11-14', ['10.9.1.1', '10.9.1.2']);
    const long = 'x'.repeat(5 * 1024 * 1024);
    const reason = /^line 4 runs over 1048576 bytes without a line break \(an SNDS row is under 1 KB\): not an SNDS IP Data export, or a damaged one; the rest of it was not read and nothing of it loaded$/;
    // As a file, the long line last (no line break after it, which alone would read as a cut-off download).
    const path = write('long-line.csv', `${good}not a row\n${long}`);
    const result = await load('long', [{ kind: 'ip_data', path }]);
    expect(result.inputs[0]).toMatchObject({ outcome: 'failed', rowsLoaded: 0, rowsRejected: 1, detail: expect.stringMatching(reason) });
    expect(result.failures).toHaveLength(1);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'long'`)).toBe(0);
    const [download] = await db().query<{ id: number; outcome: string; detail: string }>(`select id, outcome, detail from repwatch.raw_download where feed = 'long'`);
    expect(download).toMatchObject({ outcome: 'failed', detail: expect.stringMatching(reason) });
    const stored: Buffer[] = [];
    for await (const chunk of readStoredDownload(db(), download!.id)) stored.push(chunk);
    expect(Buffer.concat(stored).equals(readFileSync(path))).toBe(true);
    const rejections = await db().query<{ line_no: number | null; reason: string }>(`select line_no, reason from repwatch.rejection where location = $1 order by line_no nulls first`, [path]);
    expect(rejections.map((r) => r.line_no)).toEqual([null, 3]);
    expect(rejections[0]!.reason).toMatch(reason);

    // Through loadDataExport in 64 KB pieces, the long line in the middle: the good rows after it are
    // not loaded either, and the same line is named whatever the pieces.
    const bytes = Buffer.from(`${good}not a row\n${long}\n${dataExport('2026-11-14', ['10.9.1.3'])}`);
    const download2 = await registerDownload(db(), { source: 'file', kind: 'ip_data', feed: 'long2', location: 'long2', fetchedAt: new Date() }, { sha256: '', byteSize: bytes.length });
    const pieces = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, i * 65536 + 65536));
    const direct = await loadDataExport(db(), Readable.from(pieces), { feed: 'long2', timezone: 'UTC', downloadId: download2.id, location: 'long2' });
    expect(direct).toMatchObject({ outcome: 'failed', rowsLoaded: 0, rowsRejected: 1, detail: expect.stringMatching(reason) });
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'long2'`)).toBe(0);
    expect(await count(`select count(*)::int as n from repwatch.rejection where input_id = $1 and line_no is null`, [download2.id])).toBe(1);
  });

  it('a failed input keeps its first line rejections beside the summary, and a header naming other columns fails it', async () => {
    const header = 'IP Address,Activity start,Activity end,DATA commands,RCPT commands,Message recipients,Filter result,Complaint rate,Trap message start,Trap message end,Trap hits,Sample HELO,JMR P1 Sender,Comments\r\n';
    const path = write('reordered.csv', header + '10.1.0.1,2/12/2026 12:00 AM,2/12/2026 11:59 PM,900,1000,880,GREEN,< 0.1%,,,0,,,\r\n');
    const result = await load('hdr', [{ kind: 'ip_data', path }]);
    expect(result.inputs[0]!.outcome).toBe('failed');
    expect(result.failures[0]).toMatch(/column 4 is "DATA commands", expected "RCPT commands"; column 5 is "RCPT commands", expected "DATA commands"/);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'hdr'`)).toBe(0);
    const rejections = await db().query<{ line_no: number | null }>(`select line_no from repwatch.rejection where location = $1 order by line_no nulls first`, [path]);
    expect(rejections.map((r) => r.line_no)).toEqual([null, 1]);
    // Mostly bad: the lines' reasons are kept too (the first 100).
    const junk = write('junk-lines.csv', Array.from({ length: 150 }, (_, i) => `row ${i}`).join('\n') + '\n');
    await load('junk2', [{ kind: 'ip_data', path: junk }]);
    expect(await count(`select count(*)::int as n from repwatch.rejection where location = $1 and line_no is not null`, [junk])).toBe(100);
  });

  it('fails an input with a day-first date; warns on extra columns, and fails when most rows have them', async () => {
    const dmy = write('dmy.csv', '10.1.0.8,3/2/2026 12:00 AM,3/2/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n10.1.0.8,13/2/2026 12:00 AM,13/2/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,\r\n');
    const failed = await load('dmy', [{ kind: 'ip_data', path: dmy }]);
    expect(failed.inputs[0]!.outcome).toBe('failed');
    expect(failed.failures[0]).toMatch(/line 2: column 2 \(activity start\): "13\/2\/2026 12:00 AM" can only be read day first/);
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'dmy'`)).toBe(0);
    const row = (ip: string, extra: string) => `${ip},2/13/2026 12:00 AM,2/13/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,Abuse reported for: a@b.net${extra}\r\n`;
    const some = write('extra.csv', row('10.4.0.1', ', c@d.net') + row('10.4.0.2', '') + row('10.4.0.3', ''));
    const warned = await load('extra', [{ kind: 'ip_data', path: some }]);
    expect(warned.rowsLoaded).toBe(3);
    expect(warned.warnings).toEqual([`${some}: 1 line(s) have more than 14 fields (first: line 1); the extra fields are kept in extra_columns: an unquoted comma in a comment, or a column Microsoft added`]);
    const most = write('extra-most.csv', row('10.4.0.1', ',x') + row('10.4.0.2', ',y') + row('10.4.0.3', ''));
    const layout = await load('extra2', [{ kind: 'ip_data', path: most }]);
    expect(layout.inputs[0]!.outcome).toBe('failed');
    expect(layout.failures[0]).toMatch(/2 of 3 rows have more than 14 fields \(first: line 1\): the layout has changed/);
  });

  it('loads lines ended by a lone CR as rows', async () => {
    const text = ['10.4.1.1', '10.4.1.2', '10.4.1.3'].map((ip) => `${ip},2/13/2026 12:00 AM,2/13/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,`).join('\r') + '\r';
    const bytes = Buffer.from(text);
    const stored = await registerDownload(db(), { source: 'file', kind: 'ip_data', feed: 'mac', location: 'mac', fetchedAt: new Date() }, { sha256: '', byteSize: bytes.length });
    const pieces = Array.from({ length: Math.ceil(bytes.length / 9) }, (_, i) => bytes.subarray(i * 9, i * 9 + 9));
    const result = await loadDataExport(db(), Readable.from(pieces), { feed: 'mac', timezone: 'UTC', downloadId: stored.id, location: 'mac' });
    expect(result).toMatchObject({ outcome: 'loaded', rowsLoaded: 3, rowsRejected: 0, warnings: [] });
    expect(await count(`select count(*)::int as n from repwatch.snds_row where feed = 'mac' and extra_columns is null`)).toBe(3);
  });

  it('an answer for a requested day holding rows of other days fails (not filed under those days)', async () => {
    const bytes = Buffer.from(dataExport('2026-01-05', ['10.2.1.1']));
    const stored = await registerDownload(db(), { source: 'api', kind: 'ip_data', feed: 'api-day', location: 'api', requestedDay: '2026-11-25', fetchedAt: new Date() }, { sha256: '', byteSize: bytes.length });
    const result = await loadDataExport(db(), Readable.from([bytes]), { feed: 'api-day', timezone: 'UTC', downloadId: stored.id, location: 'api', requestedDay: '2026-11-25' });
    expect(result.outcome).toBe('failed');
    expect(result.detail).toBe('the answer for 2026-11-25 holds rows of 1 other day(s) (2026-01-05): not the day asked for (its activity periods start on it or the day before); nothing of it loaded');
    const dayBefore = await loadDataExport(db(), Readable.from([Buffer.from(dataExport('2026-11-24', ['10.2.1.1']))]), { feed: 'api-day', timezone: 'UTC', downloadId: stored.id, location: 'api', requestedDay: '2026-11-25' });
    expect(dayBefore.outcome).toBe('loaded');
  });

  it('a download that lost none of its rows is whole: fetched again it is a duplicate, even after the next day\'s export added rows to its day', async () => {
    const x = write('dup-x.csv', dataExport('2026-11-20', ['10.7.0.1', '10.7.0.2']));
    await load('dup', [{ kind: 'ip_data', path: x }]);
    // The next day's export, with a period that began on the 20th (another IP): added beside X's rows.
    await load('dup', [{ kind: 'ip_data', path: write('dup-y.csv', dataExport('2026-11-21', ['10.7.0.1']) + dataExport('2026-11-20', ['10.7.0.3'])) }]);
    expect((await load('dup', [{ kind: 'ip_data', path: x }])).inputs[0]!.outcome).toBe('duplicate');
    // A revision of one of X's rows: X is no longer whole, and loading it again puts its row back.
    await load('dup', [{ kind: 'ip_data', path: write('dup-z.csv', dataExport('2026-11-20', ['10.7.0.1'], { recipients: 3 })) }]);
    const again = await load('dup', [{ kind: 'ip_data', path: x }]);
    expect(again.inputs[0]!.outcome).toBe('loaded');
    expect(await db().query(`select host(ip) as ip, message_recipients as n from repwatch.snds_row where feed = 'dup' and day = '2026-11-20' order by ip`)).toEqual([
      { ip: '10.7.0.1', n: 1000 },
      { ip: '10.7.0.2', n: 1000 },
      { ip: '10.7.0.3', n: 1000 },
    ]);
  });

  it('a newer API answer for the same day supersedes the earlier answer whole; answers for other days only merge', async () => {
    const answer = async (day: string, text: string) => {
      const bytes = Buffer.from(text);
      const stored = await registerDownload(db(), { source: 'api', kind: 'ip_data', feed: 'api-rev', location: `api/${day}`, requestedDay: day, fetchedAt: new Date() }, { sha256: '', byteSize: bytes.length });
      return loadDataExport(db(), Readable.from([bytes]), { feed: 'api-rev', timezone: 'UTC', downloadId: stored.id, location: `api/${day}`, requestedDay: day });
    };
    const rows = () => db().query<{ day: string; ip: string; n: number }>(`select day::text, host(ip) as ip, message_recipients as n from repwatch.snds_row where feed = 'api-rev' order by day, ip`);
    // The answer for the 25th, and the next day's, which holds a period that began on the 25th.
    await answer('2026-11-25', dataExport('2026-11-25', ['10.6.0.1', '10.6.0.2']));
    await answer('2026-11-26', dataExport('2026-11-26', ['10.6.0.1']) + dataExport('2026-11-25', ['10.6.0.3']));
    expect((await rows()).filter((r) => r.day === '2026-11-25').map((r) => r.ip)).toEqual(['10.6.0.1', '10.6.0.2', '10.6.0.3']);
    // A revision of the 25th drops 10.6.0.2: gone, while the 26th's row of the 25th stays.
    const revised = await answer('2026-11-25', dataExport('2026-11-25', ['10.6.0.1'], { recipients: 9 }));
    expect(revised.rowsReplaced).toBe(2);
    expect(await rows()).toEqual([
      { day: '2026-11-25', ip: '10.6.0.1', n: 9 },
      { day: '2026-11-25', ip: '10.6.0.3', n: 1000 },
      { day: '2026-11-26', ip: '10.6.0.1', n: 1000 },
    ]);
    expect(await db().query(`select day, row_count from repwatch.snds_feed_day where feed = 'api-rev' order by day`)).toEqual([
      { day: '2026-11-25', row_count: 2 },
      { day: '2026-11-26', row_count: 1 },
    ]);
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
  it('an IP Status list with a bad line fails whole: the previous list stays current, every bad line recorded', async () => {
    const full = write('st-full.csv', '10.9.9.1,10.9.9.1,Yes,x\n10.9.9.2,10.9.9.2,Yes,x\n10.9.9.3,10.9.9.3,Yes,x\n');
    const partial = write('st-partial.csv', '10.9.9.1,10.9.9.1,Yes,x\n10.9.9.2,10.9.9.2,Yes,x\n10.9.9.3,10.9.9.3,Yess,x\n');
    expect((await load('stp', [{ kind: 'ip_status', path: full }])).inputs[0]!.outcome).toBe('loaded');
    const result = await load('stp', [{ kind: 'ip_status', path: partial }]);
    expect(result.inputs[0]).toMatchObject({ outcome: 'failed', rowsLoaded: 0, rowsRejected: 1 });
    expect(result.failures[0]).toMatch(/1 of 3 lines are not IP Status rows, e\.g\. line 3: column 3 \(blocked\).*nothing loaded, the previous list stays current/);
    const current = await db().query<{ ip: string }>(
      `select host(s.first_ip) as ip from analytics.ip_status s where s.first_ip << '10.9.9.0/24'::inet order by 1`,
    );
    expect(current.map((r) => r.ip)).toEqual(['10.9.9.1', '10.9.9.2', '10.9.9.3']);
    expect(await db().query(`select line_no from repwatch.rejection where location = $1 order by line_no nulls first`, [partial])).toEqual([{ line_no: null }, { line_no: 3 }]);
  });
});

