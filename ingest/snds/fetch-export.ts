import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Logger } from '../../lib/logger.js';
import type { Clock } from '../../lib/clock.js';
import { redact, redactUrl } from '../../lib/redact.js';

/**
 * One HTTP GET of an SNDS export, with the defences a link needs: a deadline for the response to
 * start and one for the whole body, bounded retries with exponential backoff on network errors, 5xx,
 * 408 and 429 (Retry-After honoured, capped at maxRetryAfterMs), and redirects followed by hand so
 * that a hop to a login host is seen for what it is. The body is spooled to a temporary file, never held in memory.
 * fetch, the clock and sleep are passed in so tests run against a local server at full speed.
 */

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;
export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export interface FetchOptions {
  fetch: FetchLike;
  sleep: Sleep;
  clock: Clock;
  logger: Logger;
  /** Deadline for connecting and receiving the response headers. */
  connectTimeoutMs: number;
  /** Deadline for the whole download, body included. */
  timeoutMs: number;
  /** Retries after the first attempt. */
  retries: number;
  headers?: Record<string, string>;
  /** Longest wait honoured from a Retry-After header. */
  maxRetryAfterMs?: number;
  /** Largest body accepted, counted after any content-encoding is undone (default MAX_BODY_BYTES). */
  maxBytes?: number;
  /**
   * Why a 2xx body looks cut off (given its first and last bytes), or null. Such a body is a failed
   * attempt, retried: fetch undoes gzip leniently, so a compressed body cut short arrives as a clean
   * end, and only its last line shows it.
   */
  cutOff?: (head: Buffer, tail: Buffer) => string | null;
}

/**
 * 256 MiB: a day of IP Data for 100,000 IPs is about 15 MB. A larger body is not an export (or is a
 * decompression bomb) and would fill the temporary folder and the database, once per retry.
 */
export const MAX_BODY_BYTES = 256 * 2 ** 20;

/** A response refused for what it is (an oversized body, a redirect to plain http): not retried. */
class RefusedResponseError extends Error {}

/** The response of a completed GET: status, headers that matter, and the body in a temporary file. */
export interface FetchedBody {
  status: number;
  contentType: string | null;
  /** The final URL after redirects (to be redacted before it is shown). */
  url: string;
  /** Set for a 3xx that was not followed (a login host, or too many hops). */
  location: string | null;
  file: string;
  byteSize: number;
  /** The first bytes, to tell CSV from an HTML page. */
  head: string;
  dispose(): void;
}

export class FetchFailedError extends Error {
  constructor(message: string, readonly attempts: number, readonly status: number | null) {
    super(message);
    this.name = 'FetchFailedError';
  }
}

const MAX_REDIRECTS = 5;

/** How many first bytes of a body are kept in `head`. */
export const HEAD_BYTES = 4096;

/** Statuses worth another attempt: request timeout, too many requests, server errors. */
export function isRetriedStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** GET with retries; returns the final response (any status that is not retried) or throws FetchFailedError. */
export async function fetchExport(url: string, options: FetchOptions): Promise<FetchedBody> {
  const attempts = options.retries + 1;
  let lastProblem = '';
  let lastStatus: number | null = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let waitMs = backoffMs(attempt);
    try {
      const result = await fetchOnce(url, options);
      if (isRetriedStatus(result.status)) {
        lastStatus = result.status;
        lastProblem = `HTTP ${result.status}`;
        const retryAfter = parseRetryAfter(result.retryAfter, options.clock.now());
        if (retryAfter !== null) waitMs = Math.min(retryAfter, options.maxRetryAfterMs ?? 15 * 60_000);
        result.body.dispose();
      } else {
        return result.body;
      }
    } catch (error) {
      if (error instanceof RefusedResponseError) throw new FetchFailedError(`download refused: ${error.message}`, attempt, null);
      lastStatus = null;
      lastProblem = describeNetworkError(error);
    }
    if (attempt < attempts) {
      options.logger.warn({ url: redactUrl(url), attempt, of: attempts, problem: lastProblem, retryInMs: waitMs }, 'SNDS download failed; retrying');
      await options.sleep(waitMs);
    }
  }
  throw new FetchFailedError(`download failed after ${attempts} attempt(s): ${lastProblem}`, attempts, lastStatus);
}

/** 1 s, 2 s, 4 s … capped at 30 s. */
export function backoffMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** (attempt - 1));
}

/** Retry-After as delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: Date): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now.getTime());
}

async function fetchOnce(url: string, options: FetchOptions): Promise<{ status: number; retryAfter: string | null; body: FetchedBody }> {
  const total = new AbortController();
  const totalTimer = setTimeout(() => total.abort(new Error(`no complete response within ${options.timeoutMs} ms`)), options.timeoutMs);
  try {
    let current = url;
    let headers = options.headers ?? {};
    for (let hop = 0; ; hop++) {
      const start = new AbortController();
      const startTimer = setTimeout(() => start.abort(new Error(`no response within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
      let response: Response;
      try {
        response = await options.fetch(current, {
          method: 'GET',
          redirect: 'manual',
          // identity: an uncompressed body has a Content-Length to check, where fetch would decode a
          // gzip body cut short without complaint (it decodes leniently, as browsers do).
          headers: { 'user-agent': 'repwatch', accept: 'text/csv, application/octet-stream, */*', 'accept-encoding': 'identity', ...headers },
          signal: AbortSignal.any([total.signal, start.signal]),
        });
      } finally {
        clearTimeout(startTimer);
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        const next = new URL(location, current).toString();
        if (!isLoginUrl(next) && hop < MAX_REDIRECTS) {
          await response.body?.cancel().catch(() => undefined);
          const [from, to] = [new URL(current), new URL(next)];
          if (from.protocol === 'https:' && to.protocol !== 'https:') {
            throw new RefusedResponseError(`redirected from https to ${redactUrl(next)}: the rest of the way would not be encrypted`);
          }
          // The API's bearer token (and any cookie) is for the host it was given to, not for the
          // storage or CDN host a redirect names: sent on, that host could use it.
          if (to.origin !== from.origin) headers = withoutCredentials(headers);
          current = next;
          continue;
        }
      }
      const body = await spool(response, total.signal, options.maxBytes ?? MAX_BODY_BYTES);
      const cutOff = response.status >= 200 && response.status < 300 && options.cutOff ? await cutOffProblem(body, options.cutOff) : null;
      if (cutOff) {
        body.dispose();
        throw new Error(`body truncated: ${cutOff}`);
      }
      return {
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        body: { ...body, status: response.status, contentType: response.headers.get('content-type'), url: current, location: location ? new URL(location, current).toString() : null },
      };
    }
  } finally {
    clearTimeout(totalTimer);
  }
}

async function cutOffProblem(body: Pick<FetchedBody, 'file' | 'byteSize'>, cutOff: NonNullable<FetchOptions['cutOff']>): Promise<string | null> {
  if (body.byteSize === 0) return null;
  const handle = await open(body.file, 'r');
  try {
    const head = Buffer.alloc(Math.min(HEAD_BYTES, body.byteSize));
    await handle.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(64 * 1024, body.byteSize));
    await handle.read(tail, 0, tail.length, body.byteSize - tail.length);
    return cutOff(head, tail);
  } finally {
    await handle.close();
  }
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !['authorization', 'cookie', 'proxy-authorization'].includes(name.toLowerCase())));
}

async function spool(response: Response, signal: AbortSignal, maxBytes: number): Promise<Pick<FetchedBody, 'file' | 'byteSize' | 'head' | 'dispose'>> {
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-'));
  const file = join(dir, 'body');
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  let byteSize = 0;
  let head = Buffer.alloc(0);
  try {
    const out = createWriteStream(file);
    if (response.body) {
      const source = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>, { signal });
      source.on('data', (chunk: Buffer) => {
        byteSize += chunk.length;
        if (byteSize > maxBytes) source.destroy(new RefusedResponseError(`the body is over ${maxBytes.toLocaleString('en')} bytes: not an SNDS export`));
        if (head.length < HEAD_BYTES) head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)]);
      });
      await pipeline(source, out);
    } else {
      out.end();
    }
    const declared = response.headers.get('content-length');
    if (declared && /^\d+$/.test(declared) && Number(declared) !== byteSize && !response.headers.get('content-encoding')) {
      throw new Error(`body truncated: ${byteSize} of ${declared} bytes`);
    }
    return { file, byteSize, head: head.toString('utf8'), dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}

const LOGIN_HOSTS = /(^|\.)(login\.microsoftonline\.com|login\.live\.com|login\.windows\.net|account\.live\.com|login\.microsoft\.com)$/i;

/** A redirect target that is a sign-in page rather than data. */
export function isLoginUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return LOGIN_HOSTS.test(parsed.hostname) || /(^|\.)login\./i.test(parsed.hostname) || /\/(login|signin|sign-in|oauth2)(\/|$|\.)/i.test(parsed.pathname);
  } catch {
    return false;
  }
}

function describeNetworkError(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return redact(`${e?.message ?? String(error)}${cause ? ` (${cause})` : ''}`);
}
