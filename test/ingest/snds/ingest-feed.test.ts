import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { parseConfig } from '../../../config/load-config.js';
import { fixedClock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/logger.js';
import { ingestSndsFeed, SndsNeedsPersonError, withDateParameter } from '../../../ingest/snds/ingest-feed.js';
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
  });
});
afterAll(() => server.close());

const feedConfig = (path: string, extra: Record<string, unknown> = {}) =>
  parseConfig({
    snds: {
      feeds: [{ name: `f${path.replace(/\W/g, '')}`, dataUrl: `${server.url}${path}?key=${KEY}`, linkCreatedOn: '2026-11-20', ...extra }],
      connectTimeoutMs: 300,
      timeoutMs: 600,
      retries: 1,
      refetchDays: 1,
    },
  });

describeEachBackend('SNDS automated links against a local HTTP server', (db) => {
  const run = (path: string, extra: Record<string, unknown> = {}, days?: string[]) => {
    const config = feedConfig(path, extra);
    return ingestSndsFeed({ database: db(), config, feed: config.snds.feeds[0]!, fetch, clock, logger: silentLogger(), sleep, ...(days ? { days } : {}), skipRecompute: true });
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
});
