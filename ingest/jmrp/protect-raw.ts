import libmime from 'libmime';
import libqp from 'libqp';
import { decodeBody, extractAddress, parseHeaderBlock, parseMime, walkParts, type MimePart } from '../mailbox/mime.js';
import { hashRecipient, REMOVED_RECIPIENT, RECIPIENT_FIELDS, type RecipientMode } from './store-reports.js';

/**
 * The bytes of a complaint message as kept in mail_message.raw: every occurrence of the complainer's
 * addresses replaced by its hash (or removed), as `jmrp.recipients` says. Reports hide the address in
 * more places than plain text: a report part forwarded in base64 (Outlook's shape), a legacy original
 * attached in base64, a quoted-printable body that breaks the address across a soft line break, an
 * RFC 2047 encoded word, a UTF-8 address. Each of those is decoded, protected, and encoded again in
 * the same transfer encoding; re-parsing the kept bytes gives the same stored values (a hash reads back
 * as itself). When an address still shows after that, the bytes are not kept at all (`null`): the
 * message stays whole in its mailbox's archive folder.
 */

export interface ProtectedRaw {
  /** The bytes to keep; `undefined`: keep them as received (nothing to protect); `null`: keep none. */
  bytes: Buffer | null | undefined;
  /** Why the bytes are not kept (when `bytes` is null). */
  note?: string;
}

/** A base64 or quoted-printable part nested this deep is not unwrapped again (hostile nesting). */
const MAX_NESTING = 4;

/**
 * `known`: the recipient values the parser found (Original-Rcpt-To, X-HmXmrOriginalRecipient…). For a
 * message the parser could not read as a report, `scanFields` looks for recipient fields itself.
 */
export function protectRawMessage(raw: Buffer, known: Iterable<string>, mode: RecipientMode, salt: string, scanFields = false, tree?: MimePart): ProtectedRaw {
  if (mode === 'plain') return { bytes: undefined };
  const root = tree ?? parseMime(raw).root;
  const addresses = new Set<string>();
  for (const value of [...known, ...(scanFields ? recipientFieldValues(root) : [])]) {
    const address = extractAddress(decodeWordSafely(value));
    if (address && !PROTECTED.test(address)) addresses.add(address.toLowerCase());
  }
  if (addresses.size === 0) return { bytes: undefined };
  const replacement = (address: string) => (mode === 'hash' ? hashRecipient(address, salt) : REMOVED_RECIPIENT);
  const state = { unverified: false };
  const out = protect(raw, root, [...addresses], replacement, 0, state);
  // Every body was decoded and checked unless nesting ran out; the plain check is a last safety net.
  if (state.unverified || findsPlain(out, [...addresses])) {
    return { bytes: null, note: "raw bytes not kept: the complainer's address could not be removed from them (the message stays in the mailbox's archive)" };
  }
  return { bytes: out.equals(raw) ? undefined : out };
}

const PROTECTED = /^hmac-sha256:[0-9a-f]{64}$/;

/** Recipient fields anywhere in the message, also in a base64 report part: a report we could not
 * parse (quarantined) is kept too, and still carries the address. */
function recipientFieldValues(root: MimePart): string[] {
  const values: string[] = [];
  for (const part of walkParts(root)) {
    const blocks = [part.headers];
    if (part.contentType === 'message/feedback-report' || part.contentType === 'text/rfc822-headers') {
      blocks.push(parseHeaderBlock(decodeBody(part).toString('utf8')).headers);
    }
    for (const headers of blocks) for (const name of RECIPIENT_FIELDS) values.push(...(headers.get(name) ?? []));
  }
  return values;
}

/** Every base64 / quoted-printable body that holds an address, decoded, protected and encoded again
 * in place; then plain occurrences (as Latin-1 bytes and as UTF-8 bytes, ASCII case ignored) and
 * encoded words in what is left. `root` is the MIME tree of `raw`. */
function protect(raw: Buffer, root: MimePart, addresses: string[], replacement: (address: string) => string, nesting: number, state: { unverified: boolean }): Buffer {
  const bodies = encodedBodies(raw, root);
  const splices: [start: number, end: number, bytes: Buffer][] = [];
  if (nesting >= MAX_NESTING) {
    // Encoded bodies this deep are not opened: whether they hold an address is unknown.
    if (bodies.length > 0) state.unverified = true;
  } else {
    for (const part of bodies) {
      const decoded = decodeBody(part);
      const nested = part.contentType.startsWith('message/') || part.contentType.startsWith('multipart/');
      if (!nested && !findsPlain(decoded, addresses) && !hasEncodedWordWith(decoded, addresses)) continue;
      const protectedBody = protect(decoded, parseMime(decoded).root, addresses, replacement, nesting + 1, state);
      if (protectedBody.equals(decoded)) continue;
      const start = part.body.byteOffset - raw.byteOffset;
      splices.push([start, start + part.body.length, encodeLike(part, protectedBody)]);
    }
  }
  let out = raw;
  if (splices.length > 0) {
    const pieces: Buffer[] = [];
    let from = 0;
    for (const [start, end, bytes] of splices.sort((a, b) => a[0] - b[0])) {
      if (start < from) continue;
      pieces.push(raw.subarray(from, start), bytes);
      from = end;
    }
    pieces.push(raw.subarray(from));
    out = Buffer.concat(pieces);
  }
  // Re-encoded bodies hold hashes, never an address: the plain pass cannot touch what they protect.
  return replaceEncodedWords(replacePlain(out, addresses, replacement), addresses, replacement);
}

/** Base64 and quoted-printable parts whose bodies lie in `raw` itself (not in a decoded copy). */
function encodedBodies(raw: Buffer, root: MimePart): MimePart[] {
  const parts: MimePart[] = [];
  const visit = (part: MimePart) => {
    if (part.body.buffer !== raw.buffer) return;
    if ((part.encoding === 'base64' || part.encoding === 'quoted-printable') && part.body.length > 0) {
      parts.push(part); // its children and embedded message are inside the decoded copy
      return;
    }
    part.children.forEach(visit);
    if (part.embedded) visit(part.embedded);
  };
  visit(root);
  return parts;
}

/** The body in its part's transfer encoding, lines as long and ended as the original's. */
function encodeLike(part: MimePart, body: Buffer): Buffer {
  const eol = part.body.includes('\r\n') ? '\r\n' : '\n';
  if (part.encoding === 'base64') {
    const firstLine = part.body.toString('latin1').split(/\r?\n/)[0]!.length;
    const width = firstLine >= 4 && firstLine % 4 === 0 ? firstLine : 76;
    return Buffer.from(body.toString('base64').replace(new RegExp(`.{${width}}(?=.)`, 'g'), `$&${eol}`), 'latin1');
  }
  return Buffer.from(libqp.wrap(libqp.encode(body), 76).replace(/\r?\n/g, eol), 'latin1');
}

/**
 * Every occurrence of each address, ASCII case ignored, found on a lower-cased Latin-1 copy (one
 * character per byte, so positions are byte offsets) in both its Latin-1 and its UTF-8 spelling.
 */
function replacePlain(raw: Buffer, addresses: string[], replacement: (address: string) => string): Buffer {
  const lower = raw.toString('latin1').toLowerCase();
  const hits: [start: number, end: number, text: string][] = [];
  for (const address of addresses) {
    for (const form of spellings(address)) {
      for (let at = lower.indexOf(form); at !== -1; at = lower.indexOf(form, at + form.length)) hits.push([at, at + form.length, replacement(address)]);
    }
  }
  if (hits.length === 0) return raw;
  hits.sort((a, b) => a[0] - b[0]);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const [start, end, text] of hits) {
    if (start < from) continue; // overlapping spellings: the first wins
    pieces.push(raw.subarray(from, start), Buffer.from(text, 'latin1'));
    from = end;
  }
  pieces.push(raw.subarray(from));
  return Buffer.concat(pieces);
}

/** An address as it may appear in bytes read as Latin-1 and lower-cased: as Latin-1, and as UTF-8. */
function spellings(address: string): string[] {
  const latin1 = address.toLowerCase();
  const utf8 = Buffer.from(address, 'utf8').toString('latin1').toLowerCase();
  return latin1 === utf8 ? [latin1] : [latin1, utf8];
}

function findsPlain(bytes: Buffer, addresses: string[]): boolean {
  const lower = bytes.toString('latin1').toLowerCase();
  return addresses.some((a) => spellings(a).some((form) => lower.includes(form)));
}

const ENCODED_WORD = /=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]*\?=/g;

/** RFC 2047 encoded words that decode to text holding an address, replaced by that text protected
 * (encoded again when it is not ASCII). */
function replaceEncodedWords(raw: Buffer, addresses: string[], replacement: (address: string) => string): Buffer {
  const text = raw.toString('latin1');
  if (!text.includes('=?')) return raw;
  let changed = false;
  const out = text.replace(ENCODED_WORD, (word) => {
    const decoded = decodeWordSafely(word);
    const lower = decoded.toLowerCase();
    const found = addresses.filter((a) => lower.includes(a));
    if (found.length === 0) return word;
    changed = true;
    let protectedText = decoded;
    for (const address of found) protectedText = replaceIgnoringCase(protectedText, address, replacement(address));
    return /^[\x20-\x7e]*$/.test(protectedText) ? protectedText : libmime.encodeWord(protectedText, 'B');
  });
  return changed ? Buffer.from(out, 'latin1') : raw;
}

function decodeWordSafely(word: string): string {
  try {
    return libmime.decodeWords(word);
  } catch {
    return word;
  }
}

function replaceIgnoringCase(text: string, needle: string, replacement: string): string {
  const lower = text.toLowerCase();
  let out = '';
  let from = 0;
  for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, from)) {
    out += text.slice(from, at) + replacement;
    from = at + needle.length;
  }
  return out + text.slice(from);
}

function hasEncodedWordWith(bytes: Buffer, addresses: string[]): boolean {
  const text = bytes.toString('latin1');
  if (!text.includes('=?')) return false;
  return (text.match(ENCODED_WORD) ?? []).some((word) => {
    const lower = decodeWordSafely(word).toLowerCase();
    return addresses.some((a) => lower.includes(a));
  });
}
