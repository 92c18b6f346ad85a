import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Database } from '../../db/connection.js';
import { redact } from '../../lib/redact.js';
import { hashFile, mayBeDuplicate, registerDownload, storeChunks, storedLocation, finishDownload, type RawDownloadInfo, type RawOutcome, type SndsKind, type RawSource } from './raw-store.js';
import { loadDataExport } from './load-data-export.js';
import { loadStatusExport } from './load-status-export.js';
import type { SndsRowError } from './parse-data-export.js';

/**
 * One input (a file, stdin spooled to a file, or a download spooled to a file) through the two
 * passes: store the bytes as received (and stop if the same bytes are already loaded), then parse and
 * load them. Returns a result; only database failures throw.
 */

export interface InputResult {
  kind: SndsKind;
  feed: string;
  source: RawSource;
  /** Redacted. */
  location: string;
  requestedDay: string | null;
  downloadId: number | null;
  outcome: RawOutcome | 'no_data' | 'fetch_failed';
  rowsLoaded: number;
  rowsReplaced: number;
  rowsRejected: number;
  days: string[];
  detail: string | null;
  sampleErrors: SndsRowError[];
}

export function emptyResult(info: Pick<RawDownloadInfo, 'kind' | 'feed' | 'source' | 'location' | 'requestedDay'>, outcome: InputResult['outcome'], detail: string | null, downloadId: number | null = null): InputResult {
  return {
    kind: info.kind,
    feed: info.feed,
    source: info.source,
    location: storedLocation(info),
    requestedDay: info.requestedDay ?? null,
    downloadId,
    outcome,
    rowsLoaded: 0,
    rowsReplaced: 0,
    rowsRejected: 0,
    days: [],
    detail: detail === null ? null : redact(detail),
    sampleErrors: [],
  };
}

/** The largest IP Status export parsed in memory (a block list is a few hundred lines). */
const MAX_STATUS_BYTES = 64 * 1024 * 1024;

export async function ingestLocalInput(database: Database, info: RawDownloadInfo, path: string, timezone: string): Promise<InputResult> {
  const byteSize = (await stat(path)).size;
  // Hash first only when an earlier download of the feed has this very size (a possible duplicate).
  const digest = (await mayBeDuplicate(database, info, byteSize)) ? await hashFile(path) : null;
  const stored = await registerDownload(database, { ...info, timezone }, digest ?? { sha256: '', byteSize });
  if (stored.duplicateOf !== null) {
    return emptyResult(info, 'duplicate', `same content as download ${stored.duplicateOf}; not parsed again`, stored.id);
  }
  // The bytes are stored in their own transaction. On PostgreSQL that runs on a second connection
  // while the rows load (the load commits only after the bytes have); PGlite is one session, so there
  // the bytes go first.
  const storing = storeChunks(database, stored.id, createReadStream(path, { highWaterMark: 1024 * 1024 }), digest);
  storing.catch(() => undefined);
  if (database.kind === 'pglite') await storing;
  try {
    return await parseAndLoad(database, info, stored.id, path, timezone, byteSize, () => storing);
  } finally {
    await storing;
  }
}

async function parseAndLoad(
  database: Database,
  info: RawDownloadInfo,
  downloadId: number,
  path: string,
  timezone: string,
  byteSize: number,
  stored: () => Promise<void>,
): Promise<InputResult> {
  const location = storedLocation(info);
  if (byteSize === 0) {
    await stored();
    await finishDownload(database, downloadId, 'empty', { rowsLoaded: 0, rowsRejected: 0, detail: 'empty body: no data' });
    return emptyResult(info, 'empty', 'empty body: no data', downloadId);
  }
  const head = await readHead(path);
  if (looksLikeHtml(head)) {
    const detail = 'the content is an HTML page, not an SNDS CSV export';
    await finishDownload(database, downloadId, 'failed', { rowsLoaded: 0, rowsRejected: 0, detail });
    return emptyResult(info, 'failed', detail, downloadId);
  }
  if (info.kind === 'ip_status') {
    if (byteSize > MAX_STATUS_BYTES) {
      const detail = `${byteSize} bytes is far too large for an IP Status export`;
      await finishDownload(database, downloadId, 'failed', { detail });
      return emptyResult(info, 'failed', detail, downloadId);
    }
    let text = '';
    for await (const piece of decodeText(createReadStream(path))) text += piece;
    await stored();
    const result = await loadStatusExport(database, text, { feed: info.feed, downloadId, location });
    return {
      ...emptyResult(info, result.outcome, result.detail, downloadId),
      rowsLoaded: result.rangesLoaded,
      rowsRejected: result.rowsRejected,
      sampleErrors: result.sampleErrors,
    };
  }
  const result = await loadDataExport(database, createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>, {
    feed: info.feed,
    timezone,
    downloadId,
    location,
    beforeCommit: stored,
  });
  return {
    ...emptyResult(info, result.outcome, result.detail, downloadId),
    rowsLoaded: result.rowsLoaded,
    rowsReplaced: result.rowsReplaced,
    rowsRejected: result.rowsRejected,
    days: result.days,
    sampleErrors: result.sampleErrors,
  };
}

/** UTF-8 bytes to text across chunk boundaries; a leading BOM is removed by the decoder. */
export async function* decodeText(bytes: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of bytes) {
    const text = decoder.decode(chunk as Uint8Array, { stream: true });
    if (text) yield text;
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}

async function readHead(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** What an expired link tends to return instead of CSV: a sign-in page. */
export function looksLikeHtml(head: string): boolean {
  const text = head.replace(/^\uFEFF/, '').trimStart();
  return text.startsWith('<') || /sign in to your microsoft account/i.test(head) || /<html[\s>]/i.test(head);
}
