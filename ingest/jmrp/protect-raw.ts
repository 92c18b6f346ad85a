import libmime from 'libmime';
import libqp from 'libqp';
import {
  CLIPPED_CONTENT_TYPE,
  decodeBody,
  decodeEncodedWords,
  extractAddress,
  headerText,
  MAX_HEADER_VALUE,
  parseHeaderBlock,
  parseMime,
  walkParts,
  type MimePart,
  type ParsedMessage,
} from '../mailbox/mime.js';
import { hashRecipient, REMOVED_RECIPIENT, replaceIgnoringCase, type RecipientMode } from './store-reports.js';
import { addressSpellings, MAX_REPORT_ADDRESSES, RECIPIENT_FIELDS } from './parse-report.js';

/**
 * The bytes of a complaint message as kept in mail_message.raw: every occurrence of the complainer's
 * addresses replaced by its hash (or removed), as `jmrp.recipients` says. Reports hide the address in
 * more places than plain text: a report part forwarded in base64 (Outlook's shape), a legacy original
 * or an .eml attached in base64, a quoted-printable body that breaks the address across a soft line
 * break, RFC 2047 encoded words (one address may span several), a UTF-8 address. Every base64 and
 * quoted-printable body is decoded, protected, and encoded again in the same transfer encoding;
 * re-parsing the kept bytes gives the same stored values (a hash reads back as itself).
 *
 * The escaped (`%40`, `&#64;`…) and VERP (`jane=isp.example`) spellings are rewritten like the address
 * (parse-report.ts addressSpellings). What cannot be rewritten is not kept: when an address still shows
 * in a spelling the rewrite does not cover (another letter case outside ASCII, an entity with leading
 * zeros such as `&#0064;`), or in a part the walk did not
 * reach (nested too deep, past the part cap, behind a Content-Type read from its start only), or in a
 * run of encoded words too long to decode (more than MAX_HEADER_VALUE characters), the bytes are not
 * kept at all (`null`): the message stays whole in its mailbox's archive folder. So too for a message
 * naming more than MAX_REPORT_ADDRESSES distinct addresses: each is searched for in the whole message,
 * and a hostile one naming thousands took minutes.
 */

export interface ProtectedRaw {
  /** The bytes to keep; `undefined`: keep them as received (nothing to protect); `null`: keep none. */
  bytes: Buffer | null | undefined;
  /** Why the bytes are not kept (when `bytes` is null). */
  note?: string;
}

/** Encoded bodies inside encoded bodies are opened this many levels deep (hostile nesting). */
const MAX_NESTING = 4;

const NOT_KEPT = "raw bytes not kept: the complainer's address could not be removed from them (the message stays in the mailbox's archive)";

const tooManyToRemove = (count: number) =>
  `raw bytes not kept: ${count} distinct recipient addresses, more than ${MAX_REPORT_ADDRESSES} to remove from them (the message stays in the mailbox's archive)`;

/**
 * `known`: the recipient values the parser found (reportRecipients). For a message the parser could
 * not read as a report, `scanFields` looks for recipient fields itself. `mime`: the tree of `raw` when
 * the caller already parsed it.
 */
export function protectRawMessage(raw: Buffer, known: Iterable<string>, mode: RecipientMode, salt: string, scanFields = false, mime?: ParsedMessage): ProtectedRaw {
  if (mode === 'plain') return { bytes: undefined };
  const tree = mime ?? parseMime(raw);
  const addresses = new Set<string>();
  const state = { unverified: false };
  const read = (value: string) => {
    if (state.unverified) return; // nothing will be kept: no need to read on
    // A value of encoded words too long to decode cheaply may hide an address: nothing is kept.
    if (value.length > MAX_HEADER_VALUE && value.includes('=?')) {
      state.unverified = true;
      return;
    }
    const address = extractAddress(decodeEncodedWords(value));
    if (address) addresses.add(address.toLowerCase());
  };
  for (const value of known) read(value);
  if (scanFields) for (const value of recipientFieldValues(tree.root, raw)) read(value);
  if (state.unverified) return { bytes: null, note: NOT_KEPT };
  if (addresses.size === 0) return { bytes: undefined };
  // Each address is searched for in the whole message, every spelling of it: past the cap that is no
  // longer cheap (thousands took minutes), so none is searched for and nothing is kept. Also for a
  // message that is no report (a bounce listing many recipients): privacy first.
  if (addresses.size > MAX_REPORT_ADDRESSES) return { bytes: null, note: tooManyToRemove(addresses.size) };
  const replacement = (address: string) => (mode === 'hash' ? hashRecipient(address, salt) : REMOVED_RECIPIENT);
  // Longest first: of x@y.co and x@y.com, the longer one is replaced whole.
  const out = protect(raw, tree, [...addresses].sort((a, b) => b.length - a.length), replacement, 0, state);
  if (state.unverified) return { bytes: null, note: NOT_KEPT };
  return { bytes: out.equals(raw) ? undefined : out };
}

const RECIPIENT_FIELD_LINE = new RegExp(`^(${RECIPIENT_FIELDS.join('|')})[ \\t]*:([^\\r\\n]*)`, 'gim');

/** Recipient fields anywhere in the message, also in a base64 report part: a report we could not
 * parse (quarantined) is kept too, and still carries the address. */
function recipientFieldValues(root: MimePart, raw: Buffer): string[] {
  const values: string[] = [];
  // Also any recipient field line the MIME walk does not reach (text after the last boundary, several
  // messages in one file): a line is enough to know the address to protect.
  for (const match of raw.toString('latin1').matchAll(RECIPIENT_FIELD_LINE)) values.push(match[2]!);
  for (const part of walkParts(root)) {
    const blocks = [part.headers];
    if (part.contentType === 'message/feedback-report' || part.contentType === 'text/rfc822-headers') {
      blocks.push(parseHeaderBlock(headerText(decodeBody(part))).headers);
    }
    // One at a time: push(...array) overflows the stack past about 125,000 values.
    for (const headers of blocks) for (const name of RECIPIENT_FIELDS) for (const value of headers.get(name) ?? []) values.push(value);
  }
  return values;
}

type Splice = [start: number, end: number, bytes: Buffer];

/**
 * Every base64 / quoted-printable body decoded, protected (recursively) and encoded again in place;
 * then plain occurrences and encoded words in what is left. Sets `state.unverified` when some of the
 * message could not be examined, or an address shows in a spelling that cannot be rewritten.
 */
function protect(raw: Buffer, tree: ParsedMessage, addresses: string[], replacement: (address: string) => string, nesting: number, state: { unverified: boolean }): Buffer {
  // The walk stopped early (depth or part cap), or may have missed parts (a Content-Type whose boundary
  // could lie past what was read): what it did not reach was not examined.
  if (tree.problems.some((p) => p.startsWith('MIME nesting deeper') || p.startsWith('more than') || p === CLIPPED_CONTENT_TYPE)) state.unverified = true;
  const splices: Splice[] = [];
  for (const part of encodedBodies(raw, tree.root)) {
    if (nesting >= MAX_NESTING) {
      state.unverified = true;
      break;
    }
    const decoded = decodeBody(part);
    // Only a decoded body that declares transfer encodings of its own can hide more: parse just those.
    const tree = /content-transfer-encoding/i.test(decoded.toString('latin1')) ? parseMime(decoded) : { root: leaf(decoded), problems: [], headerless: true };
    const protectedBody = protect(decoded, tree, addresses, replacement, nesting + 1, state);
    if (protectedBody.equals(decoded)) continue;
    const start = part.body.byteOffset - raw.byteOffset;
    splices.push([start, start + part.body.length, encodeLike(part, protectedBody)]);
  }
  // Re-encoded bodies hold hashes, never an address: the passes below cannot touch what they protect.
  const out = replaceEncodedWords(replacePlain(splice(raw, splices), addresses, replacement), addresses, replacement, state);
  if (showsAddress(out, addresses, state)) state.unverified = true;
  return out;
}

/** A body with no parts of its own. */
function leaf(body: Buffer): MimePart {
  return { headers: new Map(), contentType: 'text/plain', params: Object.create(null) as Record<string, string>, encoding: '', body, depth: 0, children: [] };
}

/** Base64 and quoted-printable parts whose bodies lie in `raw` itself (not in a decoded copy). */
function encodedBodies(raw: Buffer, root: MimePart): MimePart[] {
  const parts: MimePart[] = [];
  const visit = (part: MimePart) => {
    if (part.body.buffer !== raw.buffer) return;
    // A multipart's parts are split from its body as it is, whatever encoding it claims (RFC 2045
    // allows none on a multipart, and parseMime follows its children): so does this walk.
    const multipart = part.contentType.startsWith('multipart/');
    if (!multipart && (part.encoding === 'base64' || part.encoding === 'quoted-printable') && part.body.length > 0) {
      parts.push(part); // its embedded message is inside the decoded copy
      return;
    }
    part.children.forEach(visit);
    if (part.embedded) visit(part.embedded);
  };
  visit(root);
  return parts;
}

/** `raw` with each [start, end) replaced; of overlapping splices the first (the longest of those
 * starting at one place) wins. */
function splice(raw: Buffer, splices: Splice[]): Buffer {
  if (splices.length === 0) return raw;
  const pieces: Buffer[] = [];
  let from = 0;
  for (const [start, end, bytes] of splices.sort((a, b) => a[0] - b[0] || b[1] - a[1])) {
    if (start < from) continue;
    pieces.push(raw.subarray(from, start), bytes);
    from = end;
  }
  pieces.push(raw.subarray(from));
  return Buffer.concat(pieces);
}

/** The body in its part's transfer encoding, lines as long and ended as the original's. */
function encodeLike(part: MimePart, body: Buffer): Buffer {
  const original = part.body.toString('latin1');
  const eol = original.includes('\r\n') ? '\r\n' : '\n';
  const finalEol = /\r?\n$/.test(original) ? eol : '';
  if (part.encoding === 'base64') {
    const lineEnd = original.indexOf('\n');
    const firstLine = (lineEnd === -1 ? original : original.slice(0, original.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd)).length;
    const width = firstLine >= 4 && firstLine % 4 === 0 ? firstLine : 76;
    // Cut in a loop: a pattern `.{width}` built from a one-line body of millions of characters fails
    // ("Maximum call stack size exceeded" past about 5.6 million).
    const encoded = body.toString('base64');
    const lines: string[] = [];
    for (let at = 0; at < encoded.length; at += width) lines.push(encoded.slice(at, at + width));
    return Buffer.from(lines.join(eol) + finalEol, 'latin1');
  }
  // The decoded body carries its own line ends (a soft break at the end decodes to none): keep them.
  return Buffer.from(libqp.wrap(libqp.encode(body), 76).replace(/\r?\n/g, eol), 'latin1');
}

/**
 * Every occurrence of each address, ASCII case ignored, found on a lower-cased Latin-1 copy (one
 * character per byte, so positions are byte offsets) in both its Latin-1 and its UTF-8 spelling.
 */
function replacePlain(raw: Buffer, addresses: string[], replacement: (address: string) => string): Buffer {
  const lower = raw.toString('latin1').toLowerCase();
  const splices: Splice[] = [];
  for (const address of addresses) {
    const text = Buffer.from(replacement(address), 'latin1');
    for (const form of spellings(address)) {
      for (let at = lower.indexOf(form); at !== -1; at = lower.indexOf(form, at + form.length)) splices.push([at, at + form.length, text]);
    }
  }
  return splice(raw, splices);
}

/** An address as it may appear in bytes read as Latin-1 and lower-cased: each of its spellings
 * (addressSpellings: as is, VERP-encoded, with the @ escaped) as Latin-1, and as UTF-8. */
function spellings(address: string): string[] {
  const forms = new Set<string>();
  for (const spelling of addressSpellings(address)) {
    forms.add(spelling);
    forms.add(Buffer.from(spelling, 'utf8').toString('latin1').toLowerCase());
  }
  return [...forms];
}

/** Adjacent encoded words decode as one text (an address may be split across them). */
const ENCODED_WORDS = /=\?[^?\s]{1,200}\?[bBqQ]\?[^?]*?\?=(?:(?:[ \t]+(?:\r?\n[ \t]+)?|\r?\n[ \t]+)?=\?[^?\s]{1,200}\?[bBqQ]\?[^?]*?\?=)*/g;

/** Runs of RFC 2047 encoded words that decode to text holding an address, replaced by that text
 * protected (encoded again when what else the words said is not ASCII). A run longer than
 * MAX_HEADER_VALUE is not decoded (a hostile 10 MB one took seconds, twice): `state.unverified`. */
function replaceEncodedWords(raw: Buffer, addresses: string[], replacement: (address: string) => string, state: { unverified: boolean }): Buffer {
  const text = raw.toString('latin1');
  if (!text.includes('=?')) return raw;
  let changed = false;
  const out = text.replace(ENCODED_WORDS, (words) => {
    if (words.length > MAX_HEADER_VALUE) {
      state.unverified = true;
      return words;
    }
    const decoded = decodeEncodedWords(words);
    const lower = decoded.toLowerCase();
    const found = addresses.filter((a) => lower.includes(a));
    if (found.length === 0) return words;
    changed = true;
    let protectedText = decoded;
    for (const address of found) protectedText = replaceIgnoringCase(protectedText, address, replacement(address));
    return /^[\x20-\x7e]*$/.test(protectedText) ? protectedText : libmime.encodeWord(protectedText, 'B');
  });
  return changed ? Buffer.from(out, 'latin1') : raw;
}

/**
 * Whether an address still shows after the rewrite, in any spelling a reader would recognise: the
 * bytes as UTF-8 with full case folding, `%40` or `&#64;` for the @, or inside an encoded word. A header
 * value of encoded words longer than MAX_HEADER_VALUE is not decoded: `state.unverified`.
 */
function showsAddress(bytes: Buffer, addresses: string[], state: { unverified: boolean }): boolean {
  const latin1 = bytes.toString('latin1');
  const texts = [latin1.toLowerCase()];
  // Bytes outside ASCII: also read as UTF-8, where case folds beyond ASCII.
  if (/[\x80-\xff]/.test(latin1)) texts.push(bytes.toString('utf8').toLowerCase());
  if (latin1.includes('=?')) {
    // Header values as the parser reads them: unfolded, encoded words decoded by the same decoder.
    for (const part of walkParts(parseMime(bytes).root)) {
      for (const values of part.headers.values()) {
        for (const value of values) {
          if (!value.includes('=?')) continue;
          if (value.length > MAX_HEADER_VALUE) state.unverified = true;
          else texts.push(decodeEncodedWords(value).toLowerCase());
        }
      }
    }
  }
  // Each spelling once, whatever the number of texts.
  const forms = [...new Set(addresses.flatMap((a) => addressSpellings(a)))];
  return texts.some((text) => {
    const spelled = /%40|&#|&commat;/i.test(text) ? text.replace(/%40|&#0*64;|&#x0*40;|&commat;/gi, '@') : text;
    return forms.some((form) => spelled.includes(form));
  });
}
