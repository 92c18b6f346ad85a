import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { hashNormalised, keyOf, messageKey, readMessageId } from './message-key.js';
import { MailboxNeedsPersonError, type BatchOptions, type MailboxMessage, type MailboxSource } from './types.js';

export type MboxQuoting = 'mboxrd' | 'mboxo';

export interface MboxOptions {
  path: string;
  name?: string;
  /**
   * mboxrd (default): every `>…>From ` line lost one `>` when written, so one is removed. mboxo: only
   * `>From ` is unquoted (a real `>>From ` stays). The two agree on everything but deeper quoting.
   */
  quoting?: MboxQuoting;
}

const FROM_ = Buffer.from('From ', 'latin1');
const HEAD_SAMPLE = 256 * 1024;
/** `From <sender> <date>`: a sender token, then something holding a four-digit year (`… 12:08:34 2011`). */
const FROM_LINE = /^From \S+[ \t].*(?<!\d)\d{4}(?!\d)/;

/**
 * An mbox file, read as a stream and split at From_ lines: memory holds one batch of messages, never
 * the file. A message starts only at a `From <sender> <date>` line that opens the file or follows an
 * empty line, so a `From …` body line its writer did not quote stays in its message. Read-only: the
 * file is never rewritten, so settle() moves nothing and reruns are recognised by each message's key.
 */
export function mboxSource(options: MboxOptions): MailboxSource {
  const quoting = options.quoting ?? 'mboxrd';
  return {
    kind: 'mbox',
    name: options.name ?? `mbox:${basename(options.path)}`,
    archives: false,
    batches: (batchOptions) => splitMbox(options.path, quoting, batchOptions),
    async settle() {
      return { moved: 0, failed: 0 };
    },
    async backlog() {
      await assertMboxFile(options.path);
      return null;
    },
    async close() {},
  };
}

/** Lines longer than this are read in pieces instead of being held whole (base64 without line breaks). */
const LONG_LINE = 1 << 20;

/** A message being read: its pieces (unquoted, zero-copy views of the read chunks) until it passes the
 * size cap; past it, bytes are hashed as they come and only the first ones kept (to read the Message-ID). */
interface Reading {
  offset: number;
  deliveredAt: Date | null;
  parts: Buffer[];
  size: number;
  over: { hash: LfHash; head: Buffer[]; headSize: number } | null;
}

/** A configured mbox that went missing, or is a folder, needs a person (a path to fix), not retries. */
async function assertMboxFile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MailboxNeedsPersonError(`the mbox ${path} does not exist: fix the mailbox's mbox path in the configuration, or restore the file`);
    throw error;
  }
  if (!info.isFile()) throw new MailboxNeedsPersonError(`the mbox ${path} is not a file (a folder is read as a Maildir, or with --eml)`);
}

function reading(offset: number, deliveredAt: Date | null): Reading {
  return { offset, deliveredAt, parts: [], size: 0, over: null };
}

/**
 * The splitter works on whole runs of lines, not line by line: it looks only at the lines that can
 * matter (those starting with `From ` or `>`, found with indexOf), and hands everything between them to
 * the message as one piece. A blank line is content unless a From_ line follows it, so a blank line
 * that ends what has been read is held back until the next line shows which it is.
 */
async function* splitMbox(path: string, quoting: MboxQuoting, { batchSize, maxMessageBytes }: BatchOptions): AsyncGenerator<MailboxMessage[]> {
  await assertMboxFile(path);
  let batch: MailboxMessage[] = [];
  let current: Reading | null = null;
  /** A blank line that ended what was read: the separator if a From_ line comes next, else content. */
  let heldBlank: Buffer | null = null;
  let heldBlankAt = 0;
  /** The next unread byte is inside a line (a long line is being read in pieces). */
  let midLine = false;
  /** The unread partial line, and the file offset of its first byte. */
  let tail: Buffer[] = [];
  let tailSize = 0;
  let offset = 0;

  const finish = () => {
    const message = current;
    current = null;
    if (!message || message.size === 0) return;
    const raw = message.over ? null : Buffer.concat(message.parts, message.size);
    let identity: { key: string; sha256: string; messageId: string | null };
    if (raw) {
      identity = messageKey(raw);
    } else {
      const sha256 = message.over!.hash.digest();
      const messageId = readMessageId(Buffer.concat(message.over!.head));
      identity = { key: keyOf(messageId, sha256), sha256, messageId };
    }
    batch.push({ ...identity, size: message.size, raw, location: `${path} byte ${message.offset}`, deliveredAt: message.deliveredAt });
  };

  const append = (piece: Buffer, at: number) => {
    if (piece.length === 0) return;
    current ??= reading(at, null);
    const message = current;
    if (!message.over && message.size + piece.length > maxMessageBytes) {
      message.over = { hash: new LfHash(), head: [], headSize: 0 };
      const kept = message.parts;
      message.parts = [];
      for (const p of kept) hashOver(message, p);
    }
    message.size += piece.length;
    if (message.over) hashOver(message, piece);
    else message.parts.push(piece);
  };

  /** The held blank line was content after all. */
  const releaseBlank = () => {
    if (heldBlank) append(heldBlank, heldBlankAt);
    heldBlank = null;
  };

  /** Content from data[from, to), after the held blank line. */
  const content = (data: Buffer, base: number, from: number, to: number) => {
    if (to <= from) return;
    releaseBlank();
    append(data.subarray(from, to), base + from);
  };

  /** The lines in data[0, to), data[0] being at file offset `base`. The last may lack its end (the file's last
   * line, or a long line read in pieces); the first may continue one (midLine). */
  const lines = (data: Buffer, to: number, base: number) => {
    let segment = 0; // the first byte not yet given to a message
    const visit = (s: number) => {
      if (s < segment) return;
      if (startsWith(data, FROM_, s)) {
        const blankBefore = s === 0 ? current === null || heldBlank !== null : blankLineBefore(data, s, midLine);
        if (!blankBefore) return;
        const nl = data.indexOf(0x0a, s);
        const end = nl === -1 || nl >= to ? to : nl + 1;
        const text = data.toString('latin1', s, end);
        if (!FROM_LINE.test(text)) return;
        if (s === 0) {
          heldBlank = null; // the separator
        } else {
          releaseBlank();
          const separator = data[s - 2] === 0x0a || s - 1 === 0 ? s - 1 : s - 2;
          append(data.subarray(segment, separator), base + segment);
        }
        finish();
        current = reading(base + s, fromLineDate(text));
        segment = end;
      } else if (data[s] === 0x3e) {
        let depth = 0;
        while (s + depth < to && data[s + depth] === 0x3e) depth += 1;
        if (!startsWith(data, FROM_, s + depth) || (quoting === 'mboxo' && depth !== 1)) return;
        content(data, base, segment, s);
        current ??= reading(base + s, null);
        segment = s + 1; // one > removed
      }
    };
    if (!midLine) visit(0);
    let from = data.indexOf(NL_FROM, 0);
    let quote = data.indexOf(NL_QUOTE, 0);
    for (;;) {
      const next = from === -1 ? quote : quote === -1 ? from : Math.min(from, quote);
      if (next === -1 || next + 1 >= to) break;
      visit(next + 1);
      if (next === from) from = data.indexOf(NL_FROM, next + 1);
      if (next === quote) quote = data.indexOf(NL_QUOTE, next + 1);
    }
    // A blank last line is held back: the next line decides whether it separates two messages.
    const blank = data[to - 1] === 0x0a ? blankLineEndingAt(data, to, midLine) : -1;
    if (blank >= segment) {
      releaseBlank();
      append(data.subarray(segment, blank), base + segment);
      heldBlank = Buffer.from(data.subarray(blank, to));
      heldBlankAt = base + blank;
    } else {
      content(data, base, segment, to);
    }
    midLine = data[to - 1] !== 0x0a;
  };

  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    tail.push(chunk);
    tailSize += chunk.length;
    const lastNl = chunk.lastIndexOf(0x0a);
    if (lastNl !== -1) {
      const data = tail.length === 1 ? chunk : Buffer.concat(tail, tailSize);
      const to = tailSize - chunk.length + lastNl + 1;
      lines(data, to, offset);
      offset += to;
      tail = to < data.length ? [data.subarray(to)] : [];
      tailSize = data.length - to;
    } else if (tailSize > LONG_LINE && !(!midLine && (current === null || heldBlank !== null) && startsWith(Buffer.concat(tail.slice(0, 2)), FROM_, 0))) {
      // A long line that cannot start a message (the first read may hold only "Fr": two are looked
      // at): read it in pieces (memory holds no line whole).
      const data = Buffer.concat(tail, tailSize);
      lines(data, data.length, offset);
      offset += data.length;
      tail = [];
      tailSize = 0;
    }
    while (batch.length >= batchSize) yield batch.splice(0, batchSize);
  }
  if (tailSize > 0) {
    const data = Buffer.concat(tail, tailSize);
    lines(data, data.length, offset);
  }
  heldBlank = null; // a blank line ending the file separates nothing
  finish();
  while (batch.length > 0) yield batch.splice(0, batchSize);
}

const NL_FROM = Buffer.from('\nFrom ', 'latin1');
const NL_QUOTE = Buffer.from('\n>', 'latin1');

function startsWith(data: Buffer, prefix: Buffer, at: number): boolean {
  if (data.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[at + i] !== prefix[i]) return false;
  return true;
}

/** Whether the line before the one starting at `s` (> 0, data[s - 1] is its LF) is empty (LF or CRLF).
 * `midLine`: data[0] continues a line begun earlier, so a line starting at 0 is not one of its own. */
function blankLineBefore(data: Buffer, s: number, midLine: boolean): boolean {
  if (s === 1) return !midLine;
  if (data[s - 2] === 0x0a) return true;
  if (data[s - 2] !== 0x0d) return false;
  return s === 2 ? !midLine : data[s - 3] === 0x0a;
}

/** The start of the blank line that ends at `to` (data[to - 1] is LF), or -1 when the last line is not blank. */
function blankLineEndingAt(data: Buffer, to: number, midLine: boolean): number {
  if (to === 1) return midLine ? -1 : 0;
  if (data[to - 2] === 0x0a) return to - 1;
  if (data[to - 2] !== 0x0d) return -1;
  if (to === 2) return midLine ? -1 : 0;
  return data[to - 3] === 0x0a ? to - 2 : -1;
}

/** Bytes past the size cap: hashed as they come; the first HEAD_SAMPLE bytes kept (copied) for the Message-ID. */
function hashOver(message: Reading, piece: Buffer): void {
  const over = message.over!;
  over.hash.update(piece);
  if (over.headSize < HEAD_SAMPLE) {
    const head = Buffer.from(piece.subarray(0, HEAD_SAMPLE - over.headSize));
    over.head.push(head);
    over.headSize += head.length;
  }
}

/** sha256 with every CRLF read as LF (like message-key.ts), fed in pieces that may split a CRLF. */
class LfHash {
  private readonly hash: Hash = createHash('sha256');
  private carriageReturn = false;

  update(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.carriageReturn && piece[0] !== 0x0a) this.hash.update('\r');
    this.carriageReturn = piece[piece.length - 1] === 0x0d;
    hashNormalised(this.hash, this.carriageReturn ? piece.subarray(0, piece.length - 1) : piece);
  }

  digest(): string {
    if (this.carriageReturn) this.hash.update('\r');
    return this.hash.digest('hex');
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `From sender Sat Nov 28 05:35:31 2026` (asctime, taken as UTC). */
function fromLineDate(line: string): Date | null {
  const m = /([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(?:[A-Z]{2,5}\s+|[+-]\d{4}\s+)?(\d{4})/.exec(line);
  if (!m) return null;
  const month = MONTHS.indexOf(m[1]!);
  if (month < 0) return null;
  const date = new Date(Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])));
  return Number.isNaN(date.getTime()) ? null : date;
}
