import type { FetchedBody } from './fetch-export.js';
import { HEAD_BYTES, isLoginUrl } from './fetch-export.js';
import { looksLikeHtml } from './ingest-input.js';
import { isMostlyBad, parseDataExport } from './parse-data-export.js';
import { parseStatusExport } from './parse-status-export.js';
import type { SndsKind } from './raw-store.js';

/**
 * What a completed response means. An expired or broken link is undocumented and returns anything: a
 * 200 with an HTML sign-in page, a body starting with `<`, a 200 with a JSON or plain-text error,
 * 401/403, another 4xx (400, 404, 410 …), a redirect to a login host. For an automated link every one
 * of them is "a person must refresh the link" (exit 3), never "0 rows loaded" and never a plain failure.
 *
 * The REST API is judged differently: 401/403/3xx are "log in again"; 404 is "no data that day" for a
 * per-day IP Data request only. The IP Status endpoint has no day, so a 404 there is a failure: treating
 * it as an empty block list would make every IP look unblocked.
 */
export type ResponseMeaning =
  | { kind: 'data' }
  | { kind: 'empty' }
  /** REST API, per-day IP Data only: 404 is "no data for that day". */
  | { kind: 'no_data' }
  | { kind: 'broken'; reason: string }
  | { kind: 'failed'; reason: string };

/** Said with every "not an export" verdict on a link: a layout change looks the same from here. */
export const NEW_LAYOUT_HINT = 'if the link was refreshed recently, Microsoft may have changed the export layout instead: the download is kept for a look';

export interface ClassifyOptions {
  mode: 'link' | 'api';
  /** What was asked for: only a per-day IP Data request may read 404 as "no data that day". */
  kind: SndsKind;
}

export function classifyResponse(body: FetchedBody, { mode, kind }: ClassifyOptions): ResponseMeaning {
  const { status } = body;
  const who = mode === 'link' ? 'the link' : 'the SNDS API';
  if (status === 401 || status === 403) {
    return { kind: 'broken', reason: mode === 'link' ? `${who} was refused (HTTP ${status}): its key is expired or revoked` : `${who} refused the token (HTTP ${status}): log in again` };
  }
  if (status >= 300 && status < 400) {
    const target = body.location ? safeHost(body.location) : 'an unknown place';
    return {
      kind: 'broken',
      reason: body.location && isLoginUrl(body.location) ? `${who} redirected to a sign-in page (${target})` : `${who} redirected (HTTP ${status}) to ${target} and no data came`,
    };
  }
  if (status >= 400 && status < 500) {
    // Transient: retried by fetchExport; if one still arrives here it is a failed download, not a broken link.
    if (status === 408 || status === 429) return { kind: 'failed', reason: `HTTP ${status}` };
    if (mode === 'link') {
      // An automated link has no "day without data" answer: a 404 (or 400, 410 …) means the link itself is
      // wrong, expired or revoked.
      return { kind: 'broken', reason: status === 404 ? `${who} is unknown to SNDS (HTTP 404): expired or mistyped` : `${who} was rejected (HTTP ${status}): expired, revoked or mistyped` };
    }
    if (status === 404 && kind === 'ip_data') return { kind: 'no_data' };
    return {
      kind: 'failed',
      reason: status === 404 ? `HTTP 404 from the IP Status endpoint: no block list came (the previous one stays current)` : `HTTP ${status}`,
    };
  }
  if (status >= 400) return { kind: 'failed', reason: `HTTP ${status}` };
  if (status === 204 || body.byteSize === 0) return { kind: 'empty' };
  if ((body.contentType ?? '').toLowerCase().includes('text/html') || looksLikeHtml(body.head)) {
    return { kind: 'broken', reason: `${who} answered with an HTML page (HTTP ${status}), most likely a sign-in page, instead of CSV` };
  }
  if (mode === 'link') {
    const notExport = headIsNotAnExport(body, kind);
    if (notExport) {
      const type = body.contentType ? `, ${body.contentType.split(';')[0]!.trim()}` : '';
      return { kind: 'broken', reason: `${who} answered (HTTP ${status}${type}) with something that is not an SNDS ${kind === 'ip_data' ? 'IP Data' : 'IP Status'} export: ${notExport} (${NEW_LAYOUT_HINT})` };
    }
  }
  return { kind: 'data' };
}

/**
 * Whether the first bytes of a body are mostly not SNDS rows (a JSON or plain-text error page): judged
 * on the whole lines of the head, with the same "over half" rule the loader applies to the whole input.
 * Returns what was seen (no content: an error page may echo the key), or null.
 */
function headIsNotAnExport(body: Pick<FetchedBody, 'head' | 'byteSize'>, kind: SndsKind): string | null {
  let text = body.head;
  if (body.byteSize > HEAD_BYTES) {
    // Only the head was read: its last line may be cut, so judge the complete lines before it.
    const cut = text.lastIndexOf('\n');
    if (cut < 0) return null;
    text = text.slice(0, cut + 1);
  }
  // Validity does not depend on the zone; UTC has no gaps, so it rejects nothing a feed's zone would accept.
  const { rows, errors } = kind === 'ip_status' ? parseStatusExport(text) : parseDataExport(text, { timezone: 'UTC' });
  if (!isMostlyBad(rows.length, errors.length)) return null;
  return `${errors.length} of ${rows.length + errors.length} line(s)${body.byteSize > HEAD_BYTES ? ' in its first bytes' : ''} are not ${kind === 'ip_data' ? 'IP Data' : 'IP Status'} rows`;
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an unreadable location';
  }
}
