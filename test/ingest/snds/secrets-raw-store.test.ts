import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { clearRegisteredSecrets, registerSecret, registerSecretUrl } from '../../../lib/redact.js';
import { ingestLocalInput, REDACTED_BODY_NOTE } from '../../../ingest/snds/ingest-input.js';
import { readStoredDownload, registerDownload, type RawDownloadInfo } from '../../../ingest/snds/raw-store.js';
import { loadDataExport, markDownload, markFailed } from '../../../ingest/snds/load-data-export.js';
import { dataExport } from './snds-server.js';

/**
 * Issue 3: the link key and every token never reach the raw-download records. A body that echoes one
 * (an error text, a JSON error with the link) is stored, parsed and reported as a redacted copy.
 */

const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-secrets-'));
let files = 0;
const write = (content: string | Buffer) => {
  const path = join(dir, `body-${files++}`);
  writeFileSync(path, content);
  return path;
};

const KEY = 'ab+cd/ef0123==';
const LINK = `https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/data?id=${KEY}`;
/** The link as ingest-feed sends it: re-encoded by URLSearchParams with the day added. */
const SENT = (() => {
  const url = new URL(LINK);
  url.searchParams.set('date', '112526');
  return url.toString();
})();
/** The forms the key can take in a body. */
const KEY_FORMS = ['ab+cd/ef0123==', 'ab cd/ef0123==', 'ab+cd%2Fef0123%3D%3D', 'ab%2Bcd%2Fef0123%3D%3D', 'ab%20cd%2Fef0123%3D%3D', 'ab%2bcd%2fef0123%3d%3d'];
const TOKEN = 'access-token-eyJ0eXAiOiJKV1QiLCJhbGciOi-42';

afterEach(() => clearRegisteredSecrets());

describeEachBackend('secrets in downloaded bodies (issue 3)', (db) => {
  let feeds = 0;
  const info = (source: RawDownloadInfo['source'], kind: RawDownloadInfo['kind'] = 'ip_data'): RawDownloadInfo => ({
    source,
    kind,
    feed: `secrets-${feeds++}`,
    location: source === 'url' ? SENT : source === 'api' ? 'https://substrate.office.com/ip-domain-management-snds/api/report/data/2026-11-26' : '/tmp/x.csv',
    requestedDay: '2026-11-26',
    httpStatus: 200,
    contentType: 'text/plain',
    fetchedAt: new Date('2026-11-27T06:00:00Z'),
  });
  const storedBytes = async (id: number) => {
    const chunks: Buffer[] = [];
    for await (const chunk of readStoredDownload(db(), id)) chunks.push(chunk);
    return Buffer.concat(chunks);
  };
  const record = async (id: number) =>
    (await db().query<{ sha256: string; byte_size: number; detail: string | null; location: string; outcome: string; row: string }>(
      'select sha256, byte_size::int as byte_size, detail, location, outcome, d::text as row from repwatch.raw_download d where id = $1',
      [id],
    ))[0]!;
  const rejections = async (id: number) => (await db().query<{ row: string }>('select r::text as row from repwatch.rejection r where input_id = $1', [id])).map((r) => r.row);
  const expectNoKey = (text: string) => {
    for (const form of KEY_FORMS) expect(text).not.toContain(form);
    expect(text).not.toContain('ef0123');
  };

  it('a text/plain 200 echoing the link is stored redacted; hash and size are those of the stored copy', async () => {
    registerSecretUrl(LINK);
    const body = `Invalid or expired link ${SENT}\r\n`;
    const result = await ingestLocalInput(db(), info('url'), write(body), 'UTC');
    expect(result.downloadId).not.toBeNull();
    const bytes = await storedBytes(result.downloadId!);
    expectNoKey(bytes.toString('latin1'));
    expect(bytes.toString('utf8')).toBe('Invalid or expired link https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/data?id=[REDACTED]&date=112526\r\n');
    const row = await record(result.downloadId!);
    expect(row.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(row.byte_size).toBe(bytes.length);
    expect(row.detail).toContain(REDACTED_BODY_NOTE);
    expect(row.location).toBe('https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/data?id=[REDACTED]&date=112526');
    expectNoKey(row.row);
    expect(result.detail).toContain(REDACTED_BODY_NOTE);
    expectNoKey(JSON.stringify(result));
    for (const rejection of await rejections(result.downloadId!)) expectNoKey(rejection);
  });

  it('every encoded form of the key is found, and a JSON error echoing the link (id=…) too', async () => {
    registerSecretUrl(LINK);
    for (const form of KEY_FORMS) {
      const body = JSON.stringify({ error: 'link expired', link: `https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/data?id=${form}` });
      const result = await ingestLocalInput(db(), info('url'), write(body), 'UTC');
      const bytes = await storedBytes(result.downloadId!);
      expect(bytes.toString('utf8'), form).toContain('"link":"https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/data?id=[REDACTED]"');
      expectNoKey(bytes.toString('latin1'));
      expectNoKey((await record(result.downloadId!)).row);
    }
  });

  it('an API body echoing the bearer token is stored redacted (IP Status too)', async () => {
    registerSecret(TOKEN);
    const data = await ingestLocalInput(db(), info('api'), write(`{"error":"InvalidAuthenticationToken","message":"Bearer ${TOKEN} is not valid"}`), 'UTC');
    const status = await ingestLocalInput(db(), info('api', 'ip_status'), write(`token ${encodeURIComponent(TOKEN)} refused\n`), 'UTC');
    for (const result of [data, status]) {
      const bytes = await storedBytes(result.downloadId!);
      expect(bytes.toString('utf8')).toContain('[REDACTED]');
      expect(bytes.toString('utf8')).not.toContain('eyJ0eXAiOiJKV1QiLCJhbGciOi');
      expect((await record(result.downloadId!)).detail).toContain(REDACTED_BODY_NOTE);
      for (const rejection of await rejections(result.downloadId!)) expect(rejection).not.toContain('eyJ0eXAiOiJKV1QiLCJhbGciOi');
    }
  });

  it('a large export with the key across a 1 MiB boundary: no byte of the key is kept, the rows still load', async () => {
    registerSecretUrl(LINK);
    const lines: string[] = [];
    let size = 0;
    for (let i = 0; size < 3 * 1024 * 1024; i++) {
      const next = dataExport('2026-11-25', [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`]);
      lines.push(next);
      size += next.length;
    }
    let text = lines.join('');
    // A comment that holds the key, placed so that the key straddles the first 1 MiB read.
    const comment = `10.200.0.1,11/25/2026 4:00 PM,11/26/2026 3:00 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,see ${SENT}\r\n`;
    const at = 1024 * 1024 - comment.indexOf('ef0123') - 2;
    const cut = text.lastIndexOf('\n', at) + 1;
    text = `${text.slice(0, cut)}${' '.repeat(at - cut)}${text.slice(cut)}`;
    text = `${text.slice(0, at)}${comment}${text.slice(at)}`;
    expect(Buffer.from(text).subarray(1024 * 1024 - 8, 1024 * 1024 + 8).toString()).toMatch(/ef01|0123/);
    const result = await ingestLocalInput(db(), info('url'), write(text), 'UTC');
    expect(result.outcome).toBe('loaded');
    expect(result.rowsLoaded).toBe(lines.length + 1);
    expect(result.detail).toContain(REDACTED_BODY_NOTE);
    const bytes = await storedBytes(result.downloadId!);
    expectNoKey(bytes.toString('latin1'));
    expect((await record(result.downloadId!)).sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const comments = await db().query<{ comments: string }>(`select comments from repwatch.snds_row where feed = $1 and ip = '10.200.0.1'`, [result.feed]);
    expect(comments[0]!.comments).toContain('id=[REDACTED]&date=112526');
  });

  it('the normal path is untouched: a clean download is stored byte for byte with its own hash', async () => {
    registerSecretUrl(LINK);
    registerSecret(TOKEN);
    const text = dataExport('2026-11-25', ['10.8.0.1', '10.8.0.2']);
    const result = await ingestLocalInput(db(), info('url'), write(text), 'UTC');
    expect(result.outcome).toBe('loaded');
    expect(result.detail).toBeNull();
    const bytes = await storedBytes(result.downloadId!);
    expect(bytes.toString('utf8')).toBe(text);
    const row = await record(result.downloadId!);
    expect(row).toMatchObject({ sha256: createHash('sha256').update(text).digest('hex'), byte_size: Buffer.byteLength(text), detail: null, outcome: 'loaded' });
  });

  it('raw_download.detail and the failure rejection are redacted by markDownload and markFailed', async () => {
    registerSecretUrl(LINK);
    // A file (not scanned: it is the user's own) whose lines quote the key: the "mostly bad" detail quotes them.
    const path = write(`${KEY},11/25/2026 4:00 PM,,1,1,1,GREEN,< 0.1%,,,0,,,\r\nab+cd%2Fef0123%3D%3D,x\r\n`);
    const result = await ingestLocalInput(db(), info('file'), path, 'UTC');
    expect(result.outcome).toBe('failed');
    const row = await record(result.downloadId!);
    expect(row.detail).toMatch(/not IP Data rows/);
    expect(row.detail).toContain('[REDACTED]');
    expectNoKey(row.detail!);
    const rows = await rejections(result.downloadId!);
    expect(rows.length).toBeGreaterThan(0);
    for (const rejection of rows) expectNoKey(rejection);
    expectNoKey(JSON.stringify(result));

    // Called directly, with text that holds the key in its forms.
    const other = await registerDownload(db(), info('file'), { sha256: '', byteSize: 0 });
    await markFailed(db(), { downloadId: other.id, location: '/tmp/x.csv' }, `first line: ${KEY_FORMS.join(' ')}`, 1);
    expectNoKey((await record(other.id)).row);
    for (const rejection of await rejections(other.id)) expectNoKey(rejection);
    await db().transaction((session) => markDownload(session, other.id, 'loaded', { rowsLoaded: 0, detail: `1 line(s) rejected, e.g. line 1: ${SENT}` }));
    expectNoKey((await record(other.id)).row);
    // loadDataExport's own "loaded with rejections" detail goes through markDownload as well.
    const third = await registerDownload(db(), info('file'), { sha256: '', byteSize: 0 });
    const good = dataExport('2026-11-25', ['10.6.0.1', '10.6.0.2', '10.6.0.3']);
    async function* bytes() {
      yield Buffer.from(`${good}10.6.0.4,11/25/2026 4:00 PM,,x${KEY},1,1,GREEN,< 0.1%,,,0,,,\r\n`);
    }
    const loaded = await loadDataExport(db(), bytes(), { feed: 'secrets-direct', timezone: 'UTC', downloadId: third.id, location: '/tmp/x.csv' });
    expect(loaded.outcome).toBe('loaded');
    expect((await record(third.id)).detail).toMatch(/1 line\(s\) rejected/);
    expectNoKey((await record(third.id)).row);
  });
});

it('fixtures hold no key', () => {
  expect(readFileSync(new URL('../../fixtures/snds/ip-data-reference.csv', import.meta.url), 'utf8')).not.toContain('ef0123');
});
