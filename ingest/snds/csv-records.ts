import Papa from 'papaparse';

/** One CSV record of an export, with the physical line it starts on and its raw text. */
export interface CsvRecord {
  fields: string[];
  line: number;
  /** The record as it stood in the input, without its line break (for rejection records). */
  raw: string;
}

const QUOTED_LINE: Papa.ParseConfig = { delimiter: ',', newline: '\n', quoteChar: '"', skipEmptyLines: false };

/** A quoted field may hold line breaks; beyond this many lines an open quote is taken as a stray one. */
const MAX_RECORD_LINES = 20;

/**
 * Split CSV text into records, tracking physical line numbers. Both line-break styles are accepted
 * whatever the first line uses: records split on LF and a trailing CR is dropped. Empty lines are
 * skipped but counted. Returns the number of physical lines consumed, so a streaming caller can
 * continue the count.
 *
 * A line without a quote character is split on commas (exactly papaparse's own fast mode, minus its
 * per-row result objects, which cost more than the split on a million-line export). A line with
 * quotes, joined with the following lines while a quoted field is open (up to MAX_RECORD_LINES), is
 * parsed by papaparse: quoted commas, doubled quotes, line breaks inside quotes.
 */
export function forEachCsvRecord(
  text: string,
  firstLine: number,
  visit: (record: CsvRecord) => void,
  /** Offered each line whose quotes are balanced, before it is split; returning true means it is handled. */
  plainLine?: (raw: string, line: number) => boolean,
): number {
  let line = firstLine;
  let start = 0;
  while (start < text.length) {
    let newline = text.indexOf('\n', start);
    let end = newline === -1 ? text.length : newline;
    let spanned = 1;
    let fields: string[];
    // Cut before a CR of a CRLF here rather than slicing twice.
    let raw = text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    let quotes = raw.includes('"') ? countQuotes(raw, raw.length) : 0;
    if (quotes > 0 && quotes % 2 === 0 && plainLine?.(raw, line)) {
      line += 1;
      start = newline === -1 ? text.length : newline + 1;
      continue;
    }
    if (quotes > 0) {
      let joinedEnd = end;
      let joinedNewline = newline;
      let joinedLines = 1;
      while (quotes % 2 === 1 && joinedNewline !== -1 && joinedLines < MAX_RECORD_LINES) {
        const following = text.indexOf('\n', joinedNewline + 1);
        const followingEnd = following === -1 ? text.length : following;
        quotes += countQuotes(text.slice(joinedNewline + 1, followingEnd), followingEnd - joinedNewline - 1);
        joinedEnd = followingEnd;
        joinedNewline = following;
        joinedLines++;
      }
      if (quotes % 2 === 0) {
        end = joinedEnd;
        newline = joinedNewline;
        spanned = joinedLines;
        raw = text.slice(start, end);
      }
      raw = withoutTrailingCr(raw);
      // papaparse's Parser directly: Papa.parse sets up a streamer per call, which costs more than
      // the parse of one line.
      const parsed = new Papa.Parser(QUOTED_LINE).parse(raw, 0, false) as { data: string[][] };
      fields = parsed.data.flat();
      if (fields.length === 0) fields = [''];
    } else {
      if (plainLine?.(raw, line)) {
        line += 1;
        start = newline === -1 ? text.length : newline + 1;
        continue;
      }
      fields = raw.split(',');
    }
    if (raw.trim() !== '') visit({ fields, line, raw });
    line += spanned;
    start = newline === -1 ? text.length : newline + 1;
  }
  return line - firstLine;
}

function withoutTrailingCr(text: string): string {
  return text.charCodeAt(text.length - 1) === 13 ? text.slice(0, -1) : text;
}

/**
 * Lines ended by a lone CR (old Mac Excel saves): with no LF anywhere the whole text would be one line,
 * every row after the first read as extra columns of the first. Such text gets LF for every CR.
 */
export function withLineFeeds(text: string): string {
  return text.includes('\r') && !text.includes('\n') ? text.replace(/\r/g, '\n') : text;
}

/** Whether streamed bytes end their lines with a lone CR: CRs and no LF within the first bytes. */
export function endsLinesWithCr(firstBytes: Buffer): boolean {
  return firstBytes.includes(0x0d) && !firstBytes.includes(0x0a);
}

/** The text without a leading UTF-8 byte-order mark. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function countQuotes(text: string, end: number): number {
  let n = 0;
  for (let i = text.indexOf('"'); i !== -1 && i < end; i = text.indexOf('"', i + 1)) n++;
  return n;
}

/**
 * Cut streamed bytes at line boundaries: everything up to the last line break, the rest carried into
 * the next call. A quoted field still open at the cut (an odd number of quote characters) makes the cut
 * wait for more bytes, up to `maxCarry`, so a stray quote cannot make the input one record. A line
 * break byte is never part of a multi-byte UTF-8 sequence, so every cut also falls between characters.
 */
export class RecordCutter {
  private carry: Buffer = Buffer.alloc(0);
  constructor(private readonly maxCarry = 8 * 1024 * 1024) {}

  /** Bytes ending at a record boundary (possibly none) from what has arrived so far. */
  push(bytes: Buffer): Buffer {
    const all = this.carry.length ? Buffer.concat([this.carry, bytes]) : bytes;
    const cut = all.lastIndexOf(0x0a) + 1;
    if (cut === 0 || (countQuoteBytes(all, cut) % 2 === 1 && all.length < this.maxCarry)) {
      this.carry = all;
      return EMPTY;
    }
    this.carry = all.subarray(cut);
    return all.subarray(0, cut);
  }

  /** Whatever remains at the end of the input. */
  end(): Buffer {
    const rest = this.carry;
    this.carry = EMPTY;
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);

function countQuoteBytes(bytes: Buffer, end: number): number {
  let n = 0;
  for (let i = bytes.indexOf(0x22); i !== -1 && i < end; i = bytes.indexOf(0x22, i + 1)) n++;
  return n;
}
