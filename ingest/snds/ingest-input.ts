import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../db/connection.js';
import { REDACTED, redact, registeredSecretBytes } from '../../lib/redact.js';
import {
  hashFile,
  mayBeDuplicate,
  mustScanForSecrets,
  registerDownload,
  SecretInBodyError,
  storeChunks,
  storedLocation,
  finishDownload,
  type RawDownloadInfo,
  type RawOutcome,
  type SndsKind,
  type RawSource,
} from './raw-store.js';
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
  /** Loaded, but worth a look (rows merged into a day rather than replacing it, extra columns). */
  warnings: string[];
  /** Failed because most lines are not SNDS rows: from a link, a broken link (an error page). */
  notAnExport?: boolean;
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
    warnings: [],
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
  // A download is searched for registered secrets while its bytes are stored (no extra read). A real
  // export never holds one; a body that does (a server echoing the link with its key) is stored,
  // parsed and reported as a redacted copy instead, its rows and bytes from the first try rolled back.
  const scan = mustScanForSecrets(info.source);
  try {
    return await storeAndLoad(database, info, stored.id, path, timezone, byteSize, digest, scan);
  } catch (error) {
    if (!(error instanceof SecretInBodyError)) throw error;
    return await loadRedactedCopy(database, info, stored.id, path, timezone);
  }
}

/** Said in raw_download.detail and the result when the stored bytes are a redacted copy. */
export const REDACTED_BODY_NOTE = 'the body held a secret (the link key or a token, e.g. a server echoing the link); the stored bytes are a copy with it redacted';

async function storeAndLoad(
  database: Database,
  info: RawDownloadInfo,
  id: number,
  path: string,
  timezone: string,
  byteSize: number,
  digest: { sha256: string; byteSize: number } | null,
  scanForSecrets: boolean,
): Promise<InputResult> {
  // The bytes are stored in their own transaction. On PostgreSQL that runs on a second connection
  // while the rows load (the load commits only after the bytes have); PGlite is one session, so there
  // the bytes go first.
  const storing = storeChunks(database, id, createReadStream(path, { highWaterMark: 1024 * 1024 }), digest, { scanForSecrets });
  storing.catch(() => undefined);
  if (database.kind === 'pglite') await storing;
  try {
    return await parseAndLoad(database, info, id, path, timezone, byteSize, () => storing);
  } finally {
    await storing;
  }
}

async function loadRedactedCopy(database: Database, info: RawDownloadInfo, id: number, path: string, timezone: string): Promise<InputResult> {
  const copy = await redactedCopy(path);
  try {
    // The record now describes the copy: its hash and size are taken while it is stored.
    await database.query(`update repwatch.raw_download set sha256 = '', byte_size = $2, outcome = 'received', detail = null where id = $1`, [id, copy.byteSize]);
    const result = await storeAndLoad(database, info, id, copy.file, timezone, copy.byteSize, null, false);
    const detail = redact(result.detail ? `${REDACTED_BODY_NOTE}; ${result.detail}` : REDACTED_BODY_NOTE);
    await database.query('update repwatch.raw_download set detail = $2 where id = $1', [id, detail]);
    return { ...result, detail };
  } finally {
    copy.dispose();
  }
}

/**
 * A copy of a body with every registered secret replaced by [REDACTED], byte for byte (the file is
 * read as latin1, so nothing is re-encoded), and the text patterns of redact() applied line by line.
 */
export async function redactedCopy(path: string): Promise<{ file: string; byteSize: number; dispose(): void }> {
  const secrets = registeredSecretBytes().map((bytes) => bytes.toString('latin1'));
  const keep = Math.max(0, ...secrets.map((secret) => secret.length - 1));
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-redacted-'));
  const file = join(dir, 'body');
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  let byteSize = 0;
  try {
    const out = await open(file, 'w', 0o600);
    try {
      const write = async (text: string) => {
        if (!text) return;
        const bytes = Buffer.from(redact(text), 'latin1');
        byteSize += bytes.length;
        await out.write(bytes);
      };
      let carry = '';
      for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
        let text = carry + (chunk as Buffer).toString('latin1');
        for (const secret of secrets) if (text.includes(secret)) text = text.split(secret).join(REDACTED);
        // Cut after a line break so that the text patterns see whole lines; a very long line is cut
        // anywhere short of the longest secret (registered secrets are already replaced whole).
        let cut = text.lastIndexOf('\n') + 1;
        if (cut === 0 && text.length > 4 * 1024 * 1024) cut = text.length - keep;
        await write(text.slice(0, cut));
        carry = text.slice(cut);
      }
      await write(carry);
    } finally {
      await out.close();
    }
    return { file, byteSize, dispose };
  } catch (error) {
    dispose();
    throw error;
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
  // An empty IP Status list is a list (nothing blocked): it goes through the status load, which notes
  // the days whose decisions it changes.
  if (byteSize === 0 && info.kind !== 'ip_status') {
    await stored();
    await finishDownload(database, downloadId, 'empty', { rowsLoaded: 0, rowsRejected: 0, detail: 'empty body: no data' });
    return emptyResult(info, 'empty', 'empty body: no data', downloadId);
  }
  const head = byteSize === 0 ? '' : await readHead(path);
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
      sampleErrors: redactSamples(result.sampleErrors),
      ...(result.notAnExport ? { notAnExport: true } : {}),
    };
  }
  const result = await loadDataExport(database, createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>, {
    feed: info.feed,
    timezone,
    downloadId,
    location,
    beforeCommit: stored,
    // A per-day API request must answer with that day; a link's date parameter may be ignored (then
    // it answers with the latest day, which is data all the same).
    requestedDay: info.source === 'api' ? (info.requestedDay ?? null) : null,
  });
  return {
    ...emptyResult(info, result.outcome, result.detail, downloadId),
    rowsLoaded: result.rowsLoaded,
    rowsReplaced: result.rowsReplaced,
    rowsRejected: result.rowsRejected,
    days: result.days,
    sampleErrors: redactSamples(result.sampleErrors),
    // They name the stored (redacted) location and the input's days, never its text.
    warnings: result.warnings,
    ...(result.notAnExport ? { notAnExport: true } : {}),
  };
}

/** Rejected lines quote the input, which may hold a secret. */
function redactSamples(samples: readonly SndsRowError[]): SndsRowError[] {
  return samples.map((sample) => ({ ...sample, reason: redact(sample.reason), raw: redact(sample.raw) }));
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
