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

/** The longest line the cutter waits for: an SNDS row is under 1 KB (a comment quoted over several
 * lines is several lines, each under this). */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * Cut streamed bytes at line boundaries: everything up to the last line break, the rest carried into
 * the next call. A quoted field still open at the cut (an odd number of quote characters) makes the cut
 * wait for more bytes, up to `maxCarry`, so a stray quote cannot make the input one record. A line
 * break byte is never part of a multi-byte UTF-8 sequence, so every cut also falls between characters.
 *
 * What is carried is kept as the pieces it arrived in and joined once, when it is cut: joined again
 * with every piece, 256 MB without a line break took 100 s. A line longer than `maxLine` ends the
 * cutting: `overlong` says where it starts, the complete lines before it are handed out, and every
 * later piece is dropped (the input is not an export).
 */
export class RecordCutter {
  private pieces: Buffer[] = [];
  private carried = 0;
  private carriedQuotes = 0;
  /** In the carry: the offset just past its last line break (0: none), and the quotes before it. */
  private carriedCut = 0;
  private quotesBeforeCut = 0;
  /** Set once a line runs over maxLine: the byte offset in the input where that line starts. */
  overlong: { at: number } | null = null;
  private handedOut = 0;

  constructor(
    private readonly maxCarry = 8 * 1024 * 1024,
    private readonly maxLine = MAX_LINE_BYTES,
  ) {}

  /** Bytes ending at a record boundary (possibly none) from what has arrived so far. */
  push(bytes: Buffer): Buffer {
    if (this.overlong) return EMPTY;
    // Every line is measured, also one that starts and ends within this piece: whether an input
    // fails does not depend on how its bytes arrive. The current line starts at the carry's cut.
    let lineStart = this.carriedCut;
    for (let i = bytes.indexOf(0x0a); ; i = bytes.indexOf(0x0a, i + 1)) {
      const lineEnd = this.carried + (i === -1 ? bytes.length : i);
      if (lineEnd - lineStart > this.maxLine) {
        this.pieces.push(bytes);
        this.carried += bytes.length;
        this.overlong = { at: this.handedOut + lineStart };
        return this.take(lineStart, true);
      }
      if (i === -1) break;
      lineStart = lineEnd + 1;
    }
    const newline = bytes.lastIndexOf(0x0a);
    const quotesToNewline = newline === -1 ? 0 : countQuoteBytes(bytes, newline + 1);
    const quotes = quotesToNewline + countQuoteBytes(bytes, bytes.length, newline + 1);
    if (newline !== -1) {
      this.carriedCut = this.carried + newline + 1;
      this.quotesBeforeCut = this.carriedQuotes + quotesToNewline;
    }
    this.pieces.push(bytes);
    this.carried += bytes.length;
    this.carriedQuotes += quotes;
    const cut = this.carriedCut;
    if (cut === 0 || (this.quotesBeforeCut % 2 === 1 && this.carried < this.maxCarry)) return EMPTY;
    return this.take(cut, false);
  }

  /** Whatever remains at the end of the input (nothing after an overlong line). */
  end(): Buffer {
    if (this.overlong) return EMPTY;
    return this.take(this.carried, false);
  }

  /** The first `cut` carried bytes; the rest stays carried, or is dropped when `dropRest`. */
  private take(cut: number, dropRest: boolean): Buffer {
    const all = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.carried);
    const rest = dropRest ? EMPTY : all.subarray(cut);
    this.handedOut += cut;
    this.pieces = rest.length === 0 ? [] : [rest];
    // A cut is at the carry's last line break (or takes it all): the rest holds the quotes after it.
    this.carriedQuotes = rest.length === 0 ? 0 : this.carriedQuotes - this.quotesBeforeCut;
    this.carried = rest.length;
    this.carriedCut = 0;
    this.quotesBeforeCut = 0;
    return all.subarray(0, cut);
  }
}

const EMPTY = Buffer.alloc(0);

function countQuoteBytes(bytes: Buffer, end: number, from = 0): number {
  let n = 0;
  for (let i = bytes.indexOf(0x22, from); i !== -1 && i < end; i = bytes.indexOf(0x22, i + 1)) n++;
  return n;
}
