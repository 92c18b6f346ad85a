import type { FetchedBody } from './fetch-export.js';
import { isLoginUrl } from './fetch-export.js';
import { looksLikeHtml } from './ingest-input.js';

/**
 * What a completed response means. An expired or broken link is undocumented and returns any of: a
 * 200 with an HTML sign-in page, a body starting with `<`, 401/403, a redirect to a login host, a 404.
 * Every one of them is "a person must refresh the link", never "0 rows loaded".
 */
export type ResponseMeaning =
  | { kind: 'data' }
  | { kind: 'empty' }
  /** REST API only: 404 is "no data for that day". */
  | { kind: 'no_data' }
  | { kind: 'broken'; reason: string }
  | { kind: 'failed'; reason: string };

export function classifyResponse(body: FetchedBody, mode: 'link' | 'api'): ResponseMeaning {
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
  if (status === 404) return mode === 'api' ? { kind: 'no_data' } : { kind: 'broken', reason: `${who} is unknown to SNDS (HTTP 404): expired or mistyped` };
  if (status >= 400) return { kind: 'failed', reason: `HTTP ${status}` };
  if (status === 204 || body.byteSize === 0) return { kind: 'empty' };
  if ((body.contentType ?? '').toLowerCase().includes('text/html') || looksLikeHtml(body.head)) {
    return { kind: 'broken', reason: `${who} answered with an HTML page (HTTP ${status}), most likely a sign-in page, instead of CSV` };
  }
  return { kind: 'data' };
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'an unreadable location';
  }
}
