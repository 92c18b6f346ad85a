import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Database } from '../../db/connection.js';
import { redact, redactUrl, SecretScanner } from '../../lib/redact.js';

/**
 * Every download or file is kept exactly as received, before it is parsed: a row in raw_download
 * (sha256, source, time, HTTP status, location with its key redacted) and the bytes themselves in 1 MiB
 * slices.
 * Identical content already held is recognised so that it is not parsed twice.
 */

export type SndsKind = 'ip_data' | 'ip_status';
export type RawSource = 'file' | 'stdin' | 'url' | 'api';
export type RawOutcome = 'received' | 'loaded' | 'empty' | 'duplicate' | 'failed' | 'link_broken';

export interface RawDownloadInfo {
  source: RawSource;
  kind: SndsKind;
  feed: string;
  /** A path or URL; redacted before it is stored. */
  location: string;
  requestedDay?: string | null;
  httpStatus?: number | null;
  contentType?: string | null;
  /** The zone the export's timestamps are read in (the feed's). */
  timezone?: string;
  fetchedAt: Date;
}

export interface StoredDownload {
  id: number;
  sha256: string;
  byteSize: number;
  /** An earlier download with the same bytes whose data is still in place: do not parse again. */
  duplicateOf: number | null;
}

const CHUNK_BYTES = 1024 * 1024;

/** A URL carries its key: redacted. A file path is no secret, and redacting its long segments
 * (temporary folders look like keys) would only make it useless. */
export function storedLocation(info: Pick<RawDownloadInfo, 'source' | 'location'>): string {
  return info.source === 'file' || info.source === 'stdin' ? info.location : redactUrl(info.location);
}

/** Downloaded bytes are checked for a registered secret before they are kept: a server can echo the
 * link (with its key) or a token in a body that is not HTML. */
export function mustScanForSecrets(source: RawSource): boolean {
  return source === 'url' || source === 'api';
}

/** Thrown by storeChunks (its transaction rolled back, nothing kept) when the bytes hold a registered secret. */
export class SecretInBodyError extends Error {
  constructor() {
    super('the body holds a secret (the link key or a token); its bytes were not stored');
    this.name = 'SecretInBodyError';
  }
}

/**
 * Store an input held as an iterable (a stored error page, small bodies) in one pass: the record, the
 * bytes, then their hash and the duplicate check. Files go through hashFile + registerDownload +
 * storeChunks instead, so that the bytes can be stored while they are parsed.
 */
export async function storeRawDownload(
  database: Database,
  info: RawDownloadInfo,
  body: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
): Promise<StoredDownload> {
  return database.transaction(async (session) => {
    const id = await insertDownload(session.query.bind(session), info, '', 0);
    const { sha256, byteSize } = await writeChunks(session.query.bind(session), id, body);
    await session.query('update repwatch.raw_download set sha256 = $2, byte_size = $3 where id = $1', [id, sha256, byteSize]);
    const duplicateOf = await markIfDuplicate(session.query.bind(session), id, info, sha256, byteSize);
    if (duplicateOf !== null) await session.query('delete from repwatch.raw_download_chunk where download_id = $1', [id]);
    return { id, sha256, byteSize, duplicateOf };
  });
}

/** sha256 and size of a file, read once (fast next to parsing it). */
export async function hashFile(path: string): Promise<{ sha256: string; byteSize: number }> {
  const hash = createHash('sha256');
  let byteSize = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    hash.update(chunk as Buffer);
    byteSize += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), byteSize };
}

/** The record of an input whose hash is known; a duplicate is marked as such at once (no bytes kept). */
export async function registerDownload(database: Database, info: RawDownloadInfo, digest: { sha256: string; byteSize: number }): Promise<StoredDownload> {
  return database.transaction(async (session) => {
    const id = await insertDownload(session.query.bind(session), info, digest.sha256, digest.byteSize);
    const duplicateOf = await markIfDuplicate(session.query.bind(session), id, info, digest.sha256, digest.byteSize);
    return { id, ...digest, duplicateOf };
  });
}

/**
 * The bytes of a registered download, in their own transaction. With `expected`, they must hash to
 * what was registered (a file changed between the passes is refused); without, their hash and size
 * are recorded now. With `scanForSecrets`, the bytes are searched for registered secrets on their way
 * in (no extra read); one found rolls the transaction back and throws SecretInBodyError.
 */
export async function storeChunks(
  database: Database,
  id: number,
  body: AsyncIterable<Buffer | Uint8Array>,
  expected: { sha256: string; byteSize: number } | null,
  options: { scanForSecrets?: boolean } = {},
): Promise<void> {
  await database.transaction(async (session) => {
    const written = await writeChunks(session.query.bind(session), id, body, options.scanForSecrets ? new SecretScanner() : null);
    if (!expected) {
      await session.query('update repwatch.raw_download set sha256 = $2, byte_size = $3 where id = $1', [id, written.sha256, written.byteSize]);
    } else if (written.sha256 !== expected.sha256 || written.byteSize !== expected.byteSize) {
      throw new Error(`the input changed while it was read (${expected.byteSize} bytes hashed, then ${written.byteSize} bytes with another hash)`);
    }
  });
}

/**
 * Could an input of this size repeat an earlier one of the feed? Only an earlier download of exactly
 * the same size can hold the same bytes: when there is none, the separate hashing pass is skipped and
 * the hash is taken while the bytes are stored.
 */
export async function mayBeDuplicate(database: Pick<Database, 'query'>, info: Pick<RawDownloadInfo, 'kind' | 'feed'>, byteSize: number): Promise<boolean> {
  if (byteSize === 0) return false;
  const rows = await database.query('select 1 from repwatch.raw_download where kind = $1 and feed = $2 and byte_size = $3 limit 1', [info.kind, info.feed, byteSize]);
  return rows.length > 0;
}

type Query = <R>(text: string, params?: readonly unknown[]) => Promise<R[]>;

async function insertDownload(query: Query, info: RawDownloadInfo, sha256: string, byteSize: number): Promise<number> {
  const [row] = await query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, requested_day, http_status, content_type, timezone, fetched_at, sha256, byte_size)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id`,
    [info.source, info.kind, info.feed, storedLocation(info), info.requestedDay ?? null, info.httpStatus ?? null, info.contentType ?? null, info.timezone ?? 'UTC', info.fetchedAt, sha256, byteSize],
  );
  return row!.id;
}

/** The bytes in 1 MiB slices, as received, hashing them on the way. */
async function writeChunks(
  query: Query,
  id: number,
  body: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  scanner: SecretScanner | null = null,
): Promise<{ sha256: string; byteSize: number }> {
  const scan = scanner && !scanner.idle ? scanner : null;
  const hash = createHash('sha256');
  let byteSize = 0;
  let seq = 0;
  let pending: Buffer[] = [];
  let pendingSize = 0;
  const flush = async () => {
    if (pendingSize === 0) return;
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingSize);
    pending = [];
    pendingSize = 0;
    await query('insert into repwatch.raw_download_chunk (download_id, seq, data) values ($1, $2, $3)', [id, seq++, data]);
  };
  for await (const piece of body) {
    const buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (scan?.push(buffer)) throw new SecretInBodyError();
    hash.update(buffer);
    byteSize += buffer.length;
    pending.push(buffer);
    pendingSize += buffer.length;
    if (pendingSize >= CHUNK_BYTES) await flush();
  }
  await flush();
  return { sha256: hash.digest('hex'), byteSize };
}

async function markIfDuplicate(query: Query, id: number, info: RawDownloadInfo, sha256: string, byteSize: number): Promise<number | null> {
  // No hash yet (it is taken while the bytes are stored): nothing of this size was there to repeat.
  const duplicateOf = byteSize === 0 || sha256 === '' ? null : await findIntactDuplicate(query, id, info, sha256);
  if (duplicateOf !== null) {
    // The bytes are already held under the original: keep the record, not a second copy.
    await query(`update repwatch.raw_download set outcome = 'duplicate', duplicate_of = $2, detail = $3 where id = $1`, [
      id,
      duplicateOf,
      `same content as download ${duplicateOf}, whose data is still in place; not parsed again`,
    ]);
  }
  return duplicateOf;
}


/**
 * IP Data: an earlier loaded download with these bytes that has lost none of its rows to a later one
 * (re-loading it would then put them back, so it is meaningful again). Downloads loaded before
 * migration 0019 counted what they lost nowhere (rows_lost null): for them, whether every day they
 * loaded still names them. IP Status: the feed's current block list has these bytes.
 */
async function findIntactDuplicate(query: Query, id: number, info: RawDownloadInfo, sha256: string): Promise<number | null> {
  if (info.kind === 'ip_data') {
    const rows = await query<{ id: number }>(
      `select d.id from repwatch.raw_download d
        where d.kind = 'ip_data' and d.feed = $1 and d.sha256 = $2 and d.id <> $3 and d.outcome = 'loaded'
          and (d.rows_lost = 0
               or (d.rows_lost is null and d.days_loaded = (select count(*) from repwatch.snds_feed_day f where f.feed = d.feed and f.download_id = d.id)))
        order by d.id desc limit 1`,
      [info.feed, sha256, id],
    );
    return rows[0]?.id ?? null;
  }
  const rows = await query<{ id: number; sha256: string }>(
    `select d.id, d.sha256 from repwatch.current_status_download c join repwatch.raw_download d on d.id = c.id where c.feed = $1`,
    [info.feed],
  );
  return rows[0] && rows[0].sha256 === sha256 && rows[0].id !== id ? rows[0].id : null;
}

/** Record how a stored download ended. */
export async function finishDownload(
  database: Database,
  id: number,
  outcome: RawOutcome,
  counts: { rowsLoaded?: number; daysLoaded?: number; rowsReplaced?: number; rowsRejected?: number; detail?: string | null } = {},
): Promise<void> {
  await database.query(
    `update repwatch.raw_download set outcome = $2, rows_loaded = $3, days_loaded = $4, rows_replaced = $5, rows_rejected = $6, detail = $7 where id = $1`,
    [id, outcome, counts.rowsLoaded ?? null, counts.daysLoaded ?? null, counts.rowsReplaced ?? null, counts.rowsRejected ?? null, counts.detail ? redact(counts.detail) : null],
  );
}

/** The stored bytes of a download, slice by slice (re-parsing, tests). */
export async function* readStoredDownload(database: Database, id: number): AsyncGenerator<Buffer> {
  const [{ n } = { n: 0 }] = await database.query<{ n: number }>('select count(*)::int as n from repwatch.raw_download_chunk where download_id = $1', [id]);
  for (let seq = 0; seq < n; seq++) {
    const [chunk] = await database.query<{ data: Uint8Array }>('select data from repwatch.raw_download_chunk where download_id = $1 and seq = $2', [id, seq]);
    if (chunk) yield Buffer.from(chunk.data);
  }
}
