import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { parseConfig } from '../../../config/load-config.js';
import { fixedClock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/logger.js';
import { ingestSndsFeed, SndsNeedsPersonError, usesDateParameter, withDateParameter } from '../../../ingest/snds/ingest-feed.js';
import { NeedsPersonError } from '../../../cli/exit-codes.js';
import { dataExport, SIGN_IN_PAGE, startServer, type TestServer } from './snds-server.js';

const KEY = 'k3y-SECRET-for-feed-tests-0123456789';
let server: TestServer;
const slept: number[] = [];
const sleep = async (ms: number) => {
  slept.push(ms);
};
const clock = fixedClock('2026-11-27T06:00:00Z');

beforeAll(async () => {
  server = await startServer({
    '/good': (_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(dataExport('2026-11-25', ['10.9.0.1', '10.9.0.2'])),
    '/status': (_req, res) => res.writeHead(200).end('10.9.0.0,10.9.0.255,Yes,SpamHaus SBL/XBL\r\n'),
    '/empty': (_req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end(),
    '/missing': (_req, res) => res.writeHead(404).end('not found'),
    '/signin': (req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`${SIGN_IN_PAGE}<a href="${req.url}">retry</a>`),
    '/lt': (_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('<html>'),
    '/unauthorised': (_req, res) => res.writeHead(401).end(),
    '/flaky': (_req, res, _b, n) => {
      if (n % 2 === 1) res.writeHead(503, { 'retry-after': '7' }).end();
      else res.writeHead(200).end(dataExport('2026-11-26', ['10.9.1.1']));
    },
    '/broken': (_req, res) => res.writeHead(500).end('oops'),
    '/stall': () => undefined,
    '/truncated': (_req, res) => {
      res.writeHead(200, { 'content-length': '5000' });
      res.write(dataExport('2026-11-26', ['10.9.2.1']));
      setTimeout(() => res.destroy(), 20);
    },
    '/to-login': (_req, res) => res.writeHead(302, { location: `https://login.microsoftonline.com/common/oauth2/authorize?key=${KEY}` }).end(),
    '/hop': (_req, res) => res.writeHead(302, { location: '/good' }).end(),
    // Broken links that are not HTML: a JSON or plain-text error with 200, other 4xx answers.
    '/json-error': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'LinkExpired', message: 'This report link has expired.' } })),
    '/text-error': (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('Invalid or expired key.\r\n'),
    '/gone': (_req, res) => res.writeHead(410, { 'content-type': 'application/json' }).end('{"error":"gone"}'),
    '/bad-request': (_req, res) => res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad Request'),
    '/forbidden': (_req, res) => res.writeHead(403).end(),
    // Good rows for more than the sniffed head, then far more bad lines: only the load sees it is mostly bad.
    '/bad-tail': (_req, res) => {
      const good = dataExport('2026-11-26', Array.from({ length: 50 }, (_, i) => `10.9.3.${i + 1}`));
      const bad = Array.from({ length: 120 }, (_, i) => `{"item":${i},"error":"not a report row"}\r\n`).join('');
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(good + bad);
    },
    '/status-json': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"error","detail":"unauthorised"}'),
    // The headers and part of the body, then nothing: only the total deadline ends it.
    '/slow-body': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100000' });
      res.write(dataExport('2026-11-26', ['10.9.4.1', '10.9.4.2']));
    },
    '/busy-seconds': (_req, res, _b, n) => {
      if (n % 2 === 1) res.writeHead(429, { 'retry-after': '2' }).end();
      else res.writeHead(200).end(dataExport('2026-11-26', ['10.9.5.1']));
    },
    '/busy-date': (_req, res, _b, n) => {
      // The test clock reads 2026-11-27T06:00:00Z: "come back in 5 s".
      if (n % 2 === 1) res.writeHead(429, { 'retry-after': 'Fri, 27 Nov 2026 06:00:05 GMT' }).end();
      else res.writeHead(200).end(dataExport('2026-11-26', ['10.9.6.1']));
    },
    '/busy-forever': (_req, res) => res.writeHead(429, { 'retry-after': '86400' }).end(),
    '/snds/data.aspx': (_req, res) => res.writeHead(200).end(dataExport('2026-11-26', ['10.9.7.1'])),
    '/latest': (_req, res) => res.writeHead(200).end(dataExport('2026-11-26', ['10.9.8.1'])),
  });
});
afterAll(() => server.close());

const feedConfig = (path: string, extra: Record<string, unknown> = {}) =>
  parseConfig({
    snds: {
      feeds: [{ name: `f${path.replace(/\W/g, '')}`, dataUrl: `${server.url}${path}?key=${KEY}`, linkCreatedOn: '2026-11-20', dateParameter: true, ...extra }],
      connectTimeoutMs: 300,
      timeoutMs: 600,
      retries: 1,
      refetchDays: 1,
    },
  });

describeEachBackend('SNDS automated links against a local HTTP server', (db) => {
  /** `feedExtra` goes on the feed object after the schema (keys the schema does not know yet). */
  const run = (path: string, extra: Record<string, unknown> = {}, days?: string[], feedExtra: Record<string, unknown> = {}) => {
    const config = feedConfig(path, extra);
    const feed = { ...config.snds.feeds[0]!, ...feedExtra };
    return ingestSndsFeed({ database: db(), config, feed, fetch, clock, logger: silentLogger(), sleep, ...(days ? { days } : {}), skipRecompute: true });
  };
  const expectNeedsPerson = async (path: string, pattern: RegExp) => {
    const error = await run(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SndsNeedsPersonError);
    expect(error).toBeInstanceOf(NeedsPersonError);
    const message = (error as Error).message;
    expect(message).toMatch(pattern);
    expect(message).toContain(`f${path.replace(/\W/g, '')}`);
    expect(message).toContain('2026-12-20');
    expect(message).toMatch(/Automated Data Access/);
    expect(message).not.toContain(KEY);
    return error as SndsNeedsPersonError;
  };

  it('a good export loads, the requested day travels as date=MMDDYY, the status list too', async () => {
    const result = await run('/good', { statusUrl: `${server.url}/status?key=${KEY}` });
    // Two IP Data rows and one IP Status range.
    expect(result.rowsLoaded).toBe(3);
    expect(result.days).toEqual(['2026-11-25']);
    expect(result.inputs.map((i) => i.outcome)).toEqual(['loaded', 'loaded']);
    expect(server.requests.some((r) => r.url === `/good?key=${KEY}&date=112626`)).toBe(true);
    const [download] = await db().query<{ location: string; http_status: number; requested_day: string }>(
      `select location, http_status, requested_day from repwatch.raw_download where feed = 'fgood' and kind = 'ip_data'`,
    );
    expect(download).toEqual({ location: `${server.url}/good?key=[REDACTED]&date=112626`, http_status: 200, requested_day: '2026-11-26' });
  });

  it('an empty body is recorded as no data, and three empty days running give a warning', async () => {
    const first = await run('/empty', {}, ['2026-11-24']);
    expect(first.inputs[0]!.outcome).toBe('empty');
    expect(first.warnings).toEqual([]);
    const third = await run('/empty', {}, ['2026-11-25', '2026-11-26']);
    expect(third.warnings.join('\n')).toMatch(/returned no data for 3 days running \(2026-11-24 to 2026-11-26\)/);
    expect(third.failures).toEqual([]);
  });

  it('404 is a broken link: exit 3 with feed, expiry date and fix', async () => {
    await expectNeedsPerson('/missing', /unknown to SNDS \(HTTP 404\)/);
  });

  it('an HTML sign-in page with 200 is a broken link, kept (redacted) for diagnosis', async () => {
    await expectNeedsPerson('/signin', /HTML page/);
    const rows = await db().query<{ outcome: string; location: string }>(`select outcome, location from repwatch.raw_download where feed = 'fsignin'`);
    expect(rows).toEqual([{ outcome: 'link_broken', location: expect.stringContaining('key=[REDACTED]') }]);
  });

  it('a body starting with < is a broken link whatever its content type', async () => {
    await expectNeedsPerson('/lt', /HTML page/);
  });

  it('401 is a broken link', async () => {
    await expectNeedsPerson('/unauthorised', /refused \(HTTP 401\)/);
  });

  it('a 302 to a login host is a broken link; a plain redirect is followed', async () => {
    await expectNeedsPerson('/to-login', /redirected to a sign-in page \(login\.microsoftonline\.com\)/);
    expect((await run('/hop')).rowsLoaded).toBe(2);
  });

  it('500 then success: retried after the Retry-After wait, then loaded', async () => {
    slept.length = 0;
    const result = await run('/flaky');
    expect(result.rowsLoaded).toBe(1);
    expect(slept).toEqual([7000]);
  });

  it('a server error that persists fails the download after the bounded retries (exit 1, not 3)', async () => {
    slept.length = 0;
    const result = await run('/broken');
    expect(result.inputs[0]!.outcome).toBe('fetch_failed');
    expect(result.failures[0]).toMatch(/after 2 attempt\(s\): HTTP 500/);
    expect(slept).toEqual([1000]);
  });

  it('a stalled response times out and is retried, then fails', async () => {
    const result = await run('/stall');
    expect(result.inputs[0]!.outcome).toBe('fetch_failed');
    expect(result.failures[0]).toMatch(/no response within 300 ms/);
  });

  it('a truncated body is a failed download, never a partial load', async () => {
    const result = await run('/truncated');
    expect(result.inputs[0]!.outcome).toBe('fetch_failed');
    expect(await db().query(`select 1 from repwatch.snds_row where feed = 'ftruncated'`)).toEqual([]);
  });

  it('a 200 with a JSON or plain-text error is a broken link (exit 3), kept redacted, nothing loaded', async () => {
    await expectNeedsPerson('/json-error', /answered \(HTTP 200, application\/json\) with something that is not an SNDS IP Data export: 1 of 1 line\(s\) are not IP Data rows/);
    await expectNeedsPerson('/text-error', /answered \(HTTP 200, text\/plain\) with something that is not an SNDS IP Data export/);
    const rows = await db().query<{ feed: string; outcome: string }>(`select feed, outcome from repwatch.raw_download where feed in ('fjsonerror', 'ftexterror') order by feed`);
    expect(rows).toEqual([
      { feed: 'fjsonerror', outcome: 'link_broken' },
      { feed: 'ftexterror', outcome: 'link_broken' },
    ]);
  });

  it('an IP Status link answering with a JSON error is a broken link too', async () => {
    const error = await run('/good', { name: 'statusjson', statusUrl: `${server.url}/status-json?key=${KEY}` }, ['2026-11-26']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SndsNeedsPersonError);
    expect((error as Error).message).toMatch(/not an SNDS IP Status export/);
    expect((error as Error).message).toMatch(/Automated Data Access/);
    // What loaded before the broken link was found is in the error's result.
    expect((error as SndsNeedsPersonError).result.rowsLoaded).toBe(2);
  });

  it('410 and 400 are broken links, not plain failures', async () => {
    await expectNeedsPerson('/gone', /rejected \(HTTP 410\): expired, revoked or mistyped/);
    await expectNeedsPerson('/bad-request', /rejected \(HTTP 400\)/);
  });

  it('403 is a broken link', async () => {
    await expectNeedsPerson('/forbidden', /refused \(HTTP 403\): its key is expired or revoked/);
  });

  it('a body that is mostly not SNDS rows past its first bytes is a broken link; none of its rows load', async () => {
    const error = await expectNeedsPerson('/bad-tail', /not an SNDS export \(120 of 170 lines are not IP Data rows \(over half\)/);
    expect(error.result.rowsLoaded).toBe(0);
    expect(await db().query(`select 1 from repwatch.snds_row where feed = 'fbadtail'`)).toEqual([]);
    const rows = await db().query<{ outcome: string; rows_rejected: number }>(`select outcome, rows_rejected from repwatch.raw_download where feed = 'fbadtail'`);
    expect(rows).toEqual([{ outcome: 'link_broken', rows_rejected: 120 }]);
  });

  it('a body that starts and then stalls hits the total deadline: a timeout failure, nothing loaded', async () => {
    slept.length = 0;
    const result = await run('/slow-body');
    expect(result.inputs[0]!.outcome).toBe('fetch_failed');
    expect(result.failures[0]).toMatch(/after 2 attempt\(s\): .*no complete response within 600 ms/);
    expect(slept).toEqual([1000]);
    expect(await db().query(`select 1 from repwatch.snds_row where feed = 'fslowbody'`)).toEqual([]);
    expect(await db().query(`select 1 from repwatch.raw_download where feed = 'fslowbody'`)).toEqual([]);
  });

  it('429 with Retry-After in seconds is honoured, then the data loads', async () => {
    slept.length = 0;
    const result = await run('/busy-seconds');
    expect(result.rowsLoaded).toBe(1);
    expect(slept).toEqual([2000]);
  });

  it('429 with Retry-After as an HTTP date is honoured (relative to the clock)', async () => {
    slept.length = 0;
    const result = await run('/busy-date');
    expect(result.rowsLoaded).toBe(1);
    expect(slept).toEqual([5000]);
  });

  it('a Retry-After of a day is cut to the bound; a 429 that persists fails the download (exit 1, not 3)', async () => {
    slept.length = 0;
    const result = await run('/busy-forever');
    expect(slept).toEqual([15 * 60_000]);
    expect(result.inputs[0]!.outcome).toBe('fetch_failed');
    expect(result.failures[0]).toMatch(/after 2 attempt\(s\): HTTP 429/);
  });

  it('date=MMDDYY goes to legacy links only unless the feed says otherwise; without it the link is fetched once', async () => {
    let before = server.requests.length;
    const legacy = await run('/snds/data.aspx', {}, ['2026-11-25', '2026-11-26']);
    expect(legacy.inputs.map((i) => i.requestedDay)).toEqual(['2026-11-25', '2026-11-26']);
    expect(server.requests.slice(before).map((r) => new URL(r.url, 'http://x').searchParams.get('date'))).toEqual(['112526', '112626']);
    before = server.requests.length;
    const latest = await run('/latest', {}, ['2026-11-24', '2026-11-25', '2026-11-26'], { dateParameter: false });
    expect(latest.inputs.map((i) => [i.requestedDay, i.outcome])).toEqual([[null, 'loaded']]);
    expect(latest.days).toEqual(['2026-11-26']);
    expect(server.requests.slice(before).map((r) => r.url)).toEqual([`/latest?key=${KEY}`]);
  });

  it('an expired link (by linkCreatedOn) is refused before fetching; a link close to expiry warns', async () => {
    const error = await run('/good', { name: 'old', linkCreatedOn: '2026-10-01' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SndsNeedsPersonError);
    expect((error as Error).message).toMatch(/"old": its automated link expired on 2026-10-31/);
    const soon = await run('/good', { name: 'soon', linkCreatedOn: '2026-11-01' });
    expect(soon.warnings[0]).toMatch(/expires on 2026-12-01 \(4 days left\)/);
  });
});

it('withDateParameter keeps the key and adds the day as MMDDYY', () => {
  expect(withDateParameter('https://x.example/snds/data.aspx?key=abc', '2026-02-03')).toBe('https://x.example/snds/data.aspx?key=abc&date=020326');
  // The key travels exactly as configured (never re-encoded), and a date already there is replaced.
  expect(withDateParameter('https://x.example/d?id=ab+cd/ef0123==', '2026-02-03')).toBe('https://x.example/d?id=ab+cd/ef0123==&date=020326');
  expect(withDateParameter('https://x.example/d?date=010126&key=k', '2026-02-03')).toBe('https://x.example/d?key=k&date=020326');
  expect(withDateParameter('https://x.example/d?key=k&date=010126', '2026-02-03')).toBe('https://x.example/d?key=k&date=020326');
  expect(withDateParameter('https://x.example/SNDS/Auto/k3y', '2026-02-03')).toBe('https://x.example/SNDS/Auto/k3y?date=020326');
});

it('usesDateParameter: other hosts (a proxy, a test server) are asked once per run unless the feed says otherwise', () => {
  expect(usesDateParameter({ dataUrl: 'https://snds-proxy.example/data?key=abc' })).toBe(false);
  expect(usesDateParameter({ dataUrl: 'https://snds-proxy.example/data?key=abc', dateParameter: true })).toBe(true);
});

it('usesDateParameter: the feed setting wins; legacy links on, the new portal off', () => {
  expect(usesDateParameter({ dataUrl: 'https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key=abc' })).toBe(true);
  expect(usesDateParameter({ dataUrl: 'https://postmaster.live.com/snds/data.aspx?key=abc' })).toBe(true);
  expect(usesDateParameter({ dataUrl: 'https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/abc/data' })).toBe(false);
  expect(usesDateParameter({ dataUrl: 'https://substrate.office.com/x', dateParameter: true })).toBe(true);
  expect(usesDateParameter({ dataUrl: 'https://postmaster.live.com/snds/data.aspx?key=abc', dateParameter: false })).toBe(false);
});
