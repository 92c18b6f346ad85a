/**
 * A lean, defensive walk of a raw message's MIME tree, held in a Buffer.
 *
 * The MIME grammar itself comes from libmime and libqp (the nodemailer project's libraries, which
 * mailparser is built on): Content-Type parameters with RFC 2231 continuations and charsets, RFC 2047
 * encoded words in any charset iconv-lite knows, quoted-printable. What is ours is only the walk:
 * finding header blocks and multipart boundaries on Buffer slices (no copies until a body is decoded),
 * descending into message/rfc822 and its variant spellings, with hard caps on depth and part count,
 * and never throwing (problems come back as `problems`).
 *
 * Why not a whole-message parser: measured on the benchmark's reports (docs/jmrp.md), mailparser's
 * simpleParser manages about 1,400 messages/s and swallows an inline message/rfc822 part, postal-mime
 * about 2,000/s, mailsplit driven one small message at a time about 4,000/s; all of them decode every
 * part. A report needs its headers, one report part and the original's headers: this walk parses
 * about 20,000/s, which is what makes the ingest's speed target reachable at all.
 *
 * Generic on purpose: the bounce stream (message/delivery-status) uses the same walk.
 */
import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import libmime from 'libmime';
import libqp from 'libqp';

/** Header fields of one entity: lower-cased name -> values in order. Map, so no field name (such as
 * `__proto__`) can reach an object prototype. */
export type HeaderMap = Map<string, string[]>;

export interface MimePart {
  headers: HeaderMap;
  /** Lower-cased `type/subtype`; `text/plain` when absent (RFC 2045), `message/rfc822` default inside multipart/digest is ignored. */
  contentType: string;
  /** Content-Type parameters, lower-cased names (null-prototype object). */
  params: Record<string, string>;
  /** Lower-cased Content-Transfer-Encoding, '' when absent. */
  encoding: string;
  /** The body as it appears in the message (still transfer-encoded). A view into the raw buffer. */
  body: Buffer;
  depth: number;
  children: MimePart[];
  /** For message/rfc822 (and variant spellings): the embedded message, parsed. */
  embedded?: MimePart;
}

export interface ParsedMessage {
  root: MimePart;
  /** Everything odd that was noticed (a multipart without boundary, depth cap reached, ...). */
  problems: string[];
  /** True when the message had no header block at all (garbage, not mail). */
  headerless: boolean;
}

export interface MimeLimits {
  maxDepth: number;
  maxParts: number;
}

export const DEFAULT_MIME_LIMITS: MimeLimits = { maxDepth: 12, maxParts: 500 };

const LF = 0x0a;
const CR = 0x0d;

/** Find where the header block ends: returns [headerEnd, bodyStart]. No blank line: the whole buffer
 * is headers and the body is empty. */
export function splitHeaderBlock(raw: Buffer, from = 0): [number, number] {
  let lineStart = from;
  while (lineStart < raw.length) {
    const nl = raw.indexOf(LF, lineStart);
    const lineEnd = nl === -1 ? raw.length : nl;
    const len = lineEnd - lineStart;
    if (len === 0 || (len === 1 && raw[lineStart] === CR)) return [lineStart, nl === -1 ? raw.length : nl + 1];
    if (nl === -1) return [raw.length, raw.length];
    lineStart = nl + 1;
  }
  return [raw.length, raw.length];
}

/**
 * Parse a header block (also the body of message/feedback-report and text/rfc822-headers, which are
 * header-style fields). Folded lines are unfolded; lines without a colon are skipped and counted.
 */
export function parseHeaderBlock(text: string): { headers: HeaderMap; order: [string, string][]; badLines: number } {
  const headers: HeaderMap = new Map();
  const order: [string, string][] = [];
  let badLines = 0;
  let name: string | null = null;
  let value = '';
  const flush = () => {
    if (name === null) return;
    const key = name.toLowerCase();
    const v = value.trim();
    const list = headers.get(key);
    if (list) list.push(v);
    else headers.set(key, [v]);
    order.push([name, v]);
    name = null;
  };
  let at = 0;
  const length = text.length;
  while (at < length) {
    let end = text.indexOf('\n', at);
    if (end === -1) end = length;
    const line = text.charCodeAt(end - 1) === 13 ? text.slice(at, end - 1) : text.slice(at, end);
    at = end + 1;
    if (line.length === 0) continue;
    const first = line.charCodeAt(0);
    if ((first === 0x20 || first === 0x09) && name !== null) {
      value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || colon > 200 || !FIELD_NAME.test(line.slice(0, colon))) {
      flush();
      // An mbox "From " separator line that slipped through is not an error worth reporting.
      if (!line.startsWith('From ')) badLines += 1;
      continue;
    }
    flush();
    name = line.slice(0, colon).trimEnd();
    value = line.slice(colon + 1);
  }
  flush();
  return { headers, order, badLines };
}

/** A field name: printable characters without space or colon (trailing blanks before the colon tolerated). */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e\u00a0-\uffff]+[ \t]*$/;

/** How much of a header value is read where only a parsed field comes from it (a subject, a Content-Type,
 * a Source-IP): real values are far shorter, and decoding a hostile 10 MB one whole (RFC 2047 words,
 * RFC 2231 continuations) takes seconds, only for the result to be cut to a few hundred characters. */
export const MAX_HEADER_VALUE = 64 * 1024;

/** The value's first MAX_HEADER_VALUE characters (the value itself when shorter). */
export function clipHeaderValue(value: string): string {
  return value.length <= MAX_HEADER_VALUE ? value : value.slice(0, MAX_HEADER_VALUE);
}

/** The problem recorded when a Content-Type was read from its start only: what came after (a boundary,
 * say) was not seen, so parts of the message may not have been walked into. */
export const CLIPPED_CONTENT_TYPE = `Content-Type longer than ${MAX_HEADER_VALUE} characters: read from its start only`;

/** The first value of a header, or undefined. */
export function header(headers: HeaderMap, name: string): string | undefined {
  return headers.get(name.toLowerCase())?.[0];
}

/** Split `type/subtype; a=b; c="d"` into a lower-cased type and a null-prototype parameter object
 * (libmime: quoting, RFC 2231 continuations and charsets). */
export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!value) return { type: '', params };
  let parsed: { value: string; params: Record<string, unknown> };
  try {
    parsed = libmime.parseHeaderValue(value);
  } catch {
    return { type: '', params };
  }
  for (const [name, v] of Object.entries(parsed.params)) {
    if (typeof v === 'string' && !(name in params)) params[name.toLowerCase()] = v;
  }
  return { type: parsed.value.trim().toLowerCase(), params };
}

/** `message/rfc822` and the spellings seen in the wild (`message/rfc-822`, `message/rfc822-headers`
 * is headers-only and handled by the caller). */
export function isEmbeddedMessageType(type: string): boolean {
  return type === 'message/rfc822' || type === 'message/rfc-822' || type === 'message/global' || type === 'message/rfc2822';
}

/** Parse a raw message into a tree of parts. Never throws. */
export function parseMime(raw: Buffer, limits: MimeLimits = DEFAULT_MIME_LIMITS): ParsedMessage {
  const problems: string[] = [];
  const state = { parts: 0, limits, problems };
  let root: MimePart;
  try {
    root = parseEntity(raw, 0, state);
  } catch (error) {
    problems.push(`mime walk failed: ${(error as Error)?.message ?? String(error)}`);
    root = emptyPart(raw);
  }
  return { root, problems, headerless: root.headers.size === 0 };
}

function emptyPart(body: Buffer): MimePart {
  return { headers: new Map(), contentType: 'text/plain', params: Object.create(null) as Record<string, string>, encoding: '', body, depth: 0, children: [] };
}

/**
 * Header bytes as text. Headers should be ASCII (RFC 5322) or UTF-8 (RFC 6532), but raw 8-bit bytes in
 * another charset are common in old mail (`Subject: R\xe9duction`): bytes that are not valid UTF-8 are
 * read as Windows-1252 (what mail clients assume), not turned into replacement characters.
 */
export function headerText(bytes: Buffer): string {
  // iconv-lite (libmime's own charset library): Node 20's TextDecoder('windows-1252') decodes ISO-8859-1.
  return isUtf8(bytes) ? bytes.toString('utf8') : iconv.decode(bytes, 'windows-1252');
}

interface WalkState {
  parts: number;
  limits: MimeLimits;
  problems: string[];
}

function parseEntity(raw: Buffer, depth: number, state: WalkState): MimePart {
  state.parts += 1;
  const [headerEnd, bodyStart] = splitHeaderBlock(raw);
  const { headers, badLines } = parseHeaderBlock(headerText(raw.subarray(0, headerEnd)));
  if (badLines > 0 && depth === 0) state.problems.push(`${badLines} header line(s) without a field name`);
  const contentType = header(headers, 'content-type');
  if (contentType !== undefined && contentType.length > MAX_HEADER_VALUE) state.problems.push(CLIPPED_CONTENT_TYPE);
  const ct = parseContentType(contentType === undefined ? undefined : clipHeaderValue(contentType));
  const part: MimePart = {
    headers,
    contentType: ct.type || 'text/plain',
    params: ct.params,
    encoding: (header(headers, 'content-transfer-encoding') ?? '').trim().toLowerCase(),
    body: raw.subarray(bodyStart),
    depth,
    children: [],
  };
  if (depth >= state.limits.maxDepth) {
    if (part.contentType.startsWith('multipart/') || isEmbeddedMessageType(part.contentType)) {
      state.problems.push(`MIME nesting deeper than ${state.limits.maxDepth} levels: not followed`);
    }
    return part;
  }
  if (part.contentType.startsWith('multipart/')) {
    const boundary = part.params.boundary;
    if (!boundary) {
      state.problems.push(`${part.contentType} without a boundary parameter`);
      return part;
    }
    for (const body of splitMultipart(part.body, boundary, state)) {
      if (state.parts >= state.limits.maxParts) {
        state.problems.push(`more than ${state.limits.maxParts} MIME parts: the rest not followed`);
        break;
      }
      part.children.push(parseEntity(body, depth + 1, state));
    }
  } else if (isEmbeddedMessageType(part.contentType)) {
    if (state.parts < state.limits.maxParts) part.embedded = parseEntity(decodeBody(part), depth + 1, state);
    else state.problems.push(`more than ${state.limits.maxParts} MIME parts: an embedded message not followed`);
  }
  return part;
}

/** The bodies between `--boundary` delimiter lines (preamble and epilogue dropped). Lenient: a missing
 * closing delimiter ends the last part at the end of the data. */
function splitMultipart(body: Buffer, boundary: string, state: WalkState): Buffer[] {
  const delimiter = Buffer.from(`--${boundary}`, 'utf8');
  const bodies: Buffer[] = [];
  let searchFrom = 0;
  let partStart = -1;
  let closed = false;
  while (searchFrom < body.length) {
    const at = body.indexOf(delimiter, searchFrom);
    if (at === -1) break;
    const atLineStart = at === 0 || body[at - 1] === LF;
    const after = at + delimiter.length;
    if (!atLineStart) {
      searchFrom = after;
      continue;
    }
    const isClose = body[after] === 0x2d && body[after + 1] === 0x2d;
    // The rest of the delimiter line must be whitespace (else it is a longer boundary that shares a prefix).
    const nl = body.indexOf(LF, after);
    const lineEnd = nl === -1 ? body.length : nl;
    const rest = body.toString('latin1', isClose ? after + 2 : after, lineEnd);
    if (rest.trim() !== '') {
      searchFrom = after;
      continue;
    }
    if (partStart !== -1) bodies.push(body.subarray(partStart, trimLineBreakBefore(body, at)));
    if (isClose) {
      closed = true;
      break;
    }
    partStart = nl === -1 ? body.length : nl + 1;
    searchFrom = partStart;
  }
  if (!closed && partStart !== -1) {
    state.problems.push('multipart without its closing boundary');
    bodies.push(body.subarray(partStart));
  }
  if (partStart === -1) state.problems.push('multipart whose boundary never appears');
  return bodies;
}

/** The CRLF before a delimiter belongs to the delimiter (RFC 2046). */
function trimLineBreakBefore(body: Buffer, at: number): number {
  let end = at;
  if (end > 0 && body[end - 1] === LF) end -= 1;
  if (end > 0 && body[end - 1] === CR) end -= 1;
  return end;
}

/** The part's body with its transfer encoding undone (base64, quoted-printable; others as is). */
export function decodeBody(part: Pick<MimePart, 'body' | 'encoding'>): Buffer {
  if (part.encoding === 'base64') return Buffer.from(part.body.toString('latin1'), 'base64');
  if (part.encoding === 'quoted-printable') return decodeQuotedPrintable(part.body);
  return part.body;
}

export function decodeQuotedPrintable(input: Buffer): Buffer {
  return libqp.decode(input);
}

/** Every part of the tree, depth first, including embedded messages and their parts. */
export function* walkParts(part: MimePart): Generator<MimePart> {
  yield part;
  for (const child of part.children) yield* walkParts(child);
  if (part.embedded) yield* walkParts(part.embedded);
}

/** RFC 2047 encoded words (`=?utf-8?B?...?=`) decoded (libmime); one that cannot be decoded stays as it is. */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/**
 * The address inside `Name <local@domain>` or a bare `local@domain`, lower-cased domain. Linear in the
 * value's length: a pattern like /[^…]+@[^…]+/ rescans the rest of the value from every start, which
 * took 14 s on one 160 KB header without an @ (hostile reports have such headers).
 */
export function extractAddress(value: string | undefined): string | null {
  if (!value) return null;
  const candidate = firstWithInnerAt(value, /<[^<>]*>/g, 1) ?? firstWithInnerAt(value, /[^\s<>"(),;:]+/g, 0);
  if (!candidate) return null;
  const at = candidate.lastIndexOf('@');
  return `${candidate.slice(0, at)}@${candidate.slice(at + 1).toLowerCase()}`;
}

/** The first match (each found in one pass: the patterns cannot backtrack across matches) that, with
 * `trim` characters cut from each end, has no whitespace and an @ with something on both sides. */
function firstWithInnerAt(value: string, pattern: RegExp, trim: number): string | null {
  for (const match of value.matchAll(pattern)) {
    const inner = trim ? match[0].slice(trim, -trim) : match[0];
    if (/\s/.test(inner)) continue;
    const at = inner.indexOf('@', 1);
    if (at !== -1 && at < inner.length - 1) return inner;
  }
  return null;
}

export function domainOf(address: string | null): string | null {
  if (!address) return null;
  const domain = trimEndOf(address.slice(address.lastIndexOf('@') + 1), '>.', true).toLowerCase();
  return domain.length > 0 && domain.length <= 255 ? domain : null;
}

/**
 * `value` without the characters of `chars` (and, with `whitespace`, any Unicode space) at its end.
 * A loop, not `replace(/[…]+$/)`: that regex retries from every position of a long run followed by
 * another character, so a hostile address of 100,000 dots took 16 s (and a 10 MB message hours) on
 * the thread that runs every job.
 */
export function trimEndOf(value: string, chars: string, whitespace = false): string {
  let end = value.length;
  while (end > 0 && (chars.includes(value[end - 1]!) || (whitespace && /\s/.test(value[end - 1]!)))) end -= 1;
  return end === value.length ? value : value.slice(0, end);
}
