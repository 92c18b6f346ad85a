import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { keyOf, readMessageId } from './message-key.js';
import type { BatchOptions, MailboxMessage, MailboxSource } from './types.js';

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
      await access(options.path);
      return null;
    },
    async close() {},
  };
}

interface Current {
  offset: number;
  lines: Buffer[];
  size: number;
  oversize: boolean;
  head: Buffer[];
  headSize: number;
  hash: Hash;
  /** A blank line is held back: before the next `From ` line it is the separator, not message content. */
  heldBlank: Buffer | null;
  deliveredAt: Date | null;
}

async function* splitMbox(path: string, quoting: MboxQuoting, { batchSize, maxMessageBytes }: BatchOptions): AsyncGenerator<MailboxMessage[]> {
  await stat(path);
  let batch: MailboxMessage[] = [];
  let current: Current | null = null;
  let offset = 0;
  let carry: Buffer | null = null;

  const start = (at: number, fromLine: string | null): Current => ({
    offset: at,
    lines: [],
    size: 0,
    oversize: false,
    head: [],
    headSize: 0,
    hash: createHash('sha256'),
    heldBlank: null,
    deliveredAt: fromLine ? fromLineDate(fromLine) : null,
  });

  const append = (message: Current, line: Buffer) => {
    // Hash with CRLF normalised to LF, like message-key.ts.
    const crlf = line.length >= 2 && line[line.length - 2] === 0x0d;
    if (crlf) {
      message.hash.update(line.subarray(0, line.length - 2));
      message.hash.update('\n');
    } else {
      message.hash.update(line);
    }
    message.size += line.length;
    if (message.headSize < HEAD_SAMPLE) {
      message.head.push(line);
      message.headSize += line.length;
    }
    if (message.oversize) return;
    if (message.size > maxMessageBytes) {
      message.oversize = true;
      message.lines = [];
      return;
    }
    message.lines.push(line);
  };

  const finish = (message: Current): MailboxMessage | null => {
    if (message.size === 0) return null;
    const sha256 = message.hash.digest('hex');
    const raw = message.oversize ? null : Buffer.concat(message.lines, message.size);
    const messageId = readMessageId(raw ?? Buffer.concat(message.head));
    return {
      key: keyOf(messageId, sha256),
      sha256,
      messageId,
      size: message.size,
      raw,
      location: `${path} byte ${message.offset}`,
      deliveredAt: message.deliveredAt,
    };
  };

  const onLine = (line: Buffer, at: number): MailboxMessage | null => {
    // The previous line was empty exactly when a blank is held back; no message yet means the file's start.
    if (startsWith(line, FROM_, 0) && (current === null || current.heldBlank !== null)) {
      const text = line.toString('latin1');
      if (FROM_LINE.test(text)) {
        const done = current ? finish(current) : null;
        current = start(at, text);
        return done;
      }
    }
    current ??= start(at, null);
    if (isBlank(line)) {
      if (current.heldBlank) append(current, current.heldBlank);
      current.heldBlank = line;
      return null;
    }
    if (current.heldBlank) {
      append(current, current.heldBlank);
      current.heldBlank = null;
    }
    append(current, unquote(line, quoting));
    return null;
  };

  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    const data: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const dataOffset = offset - (carry?.length ?? 0);
    carry = null;
    let lineStart = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, lineStart);
      if (nl === -1) break;
      const done = onLine(data.subarray(lineStart, nl + 1), dataOffset + lineStart);
      if (done) {
        batch.push(done);
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      lineStart = nl + 1;
    }
    // The partial last line waits for the next chunk; copy it so the chunk can be released.
    if (lineStart < data.length) carry = Buffer.from(data.subarray(lineStart));
    offset += chunk.length;
  }
  if (carry) {
    const done = onLine(carry, offset - carry.length);
    if (done) batch.push(done);
  }
  if (current) {
    const done = finish(current);
    if (done) batch.push(done);
  }
  if (batch.length > 0) yield batch;
}

function startsWith(line: Buffer, prefix: Buffer, at: number): boolean {
  if (line.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[at + i] !== prefix[i]) return false;
  return true;
}

function isBlank(line: Buffer): boolean {
  return line.length === 1 || (line.length === 2 && line[0] === 0x0d);
}

/** Undo the `>From ` quoting the mbox writer added. */
function unquote(line: Buffer, quoting: MboxQuoting): Buffer {
  if (line[0] !== 0x3e) return line;
  let depth = 0;
  while (line[depth] === 0x3e) depth += 1;
  if (!startsWith(line, FROM_, depth)) return line;
  if (quoting === 'mboxo' && depth !== 1) return line;
  return line.subarray(1);
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
