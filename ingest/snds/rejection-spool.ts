import { appendFileSync, createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redact } from '../../lib/redact.js';
import { csvNumber, csvText } from './copy-csv.js';
import type { SndsRowError } from './parse-data-export.js';
import { detach } from './parse-timestamp.js';

/**
 * Rejected rows of one input, held until the rows' COPY has finished (one connection cannot run a
 * second statement mid-COPY). Kept in memory up to a limit, then spilled to a temporary file, so an
 * input with hundreds of thousands of bad lines still loads in bounded memory.
 */
export class RejectionSpool {
  private lines: string[] = [];
  private size = 0;
  private file: string | null = null;
  private dir: string | null = null;
  count = 0;
  /** The first few, for messages and summaries. */
  readonly sample: SndsRowError[] = [];
  /** The first `keep`, recorded even when the input fails as a whole and the spool is not written. */
  readonly kept: SndsRowError[] = [];

  constructor(
    private readonly source: string,
    private readonly downloadId: number,
    private readonly location: string,
    private readonly memoryLimit = 8 * 1024 * 1024,
    private readonly keep = 0,
  ) {}

  add(error: SndsRowError): void {
    this.count++;
    if (this.sample.length < 5 || this.kept.length < this.keep) {
      const copy = { line: error.line, reason: detach(error.reason), raw: detach(error.raw.length > 10_000 ? `${error.raw.slice(0, 10_000)}…` : error.raw) };
      if (this.sample.length < 5) this.sample.push(copy);
      if (this.kept.length < this.keep) this.kept.push(copy);
    }
    const line = [
      csvText(this.source),
      csvNumber(this.downloadId),
      csvText(this.location),
      csvNumber(error.line),
      csvText(redact(error.reason)),
      csvText(redact(error.raw.length > 10_000 ? `${error.raw.slice(0, 10_000)}…` : error.raw)),
    ].join(',');
    this.lines.push(`${line}\n`);
    this.size += line.length + 1;
    if (this.size >= this.memoryLimit) this.spill();
  }

  private spill(): void {
    if (!this.file) {
      this.dir = mkdtempSync(join(tmpdir(), 'repwatch-rejections-'));
      this.file = join(this.dir, 'rejections.csv');
    }
    appendFileSync(this.file, this.lines.join(''));
    this.lines = [];
    this.size = 0;
  }

  static readonly columns = ['source', 'input_id', 'location', 'line_no', 'reason', 'raw'] as const;

  /** The spooled rows as COPY CSV chunks (record boundaries kept). */
  async *csv(): AsyncGenerator<string> {
    if (this.file) {
      this.spill();
      let carry = '';
      for await (const chunk of createReadStream(this.file, { encoding: 'utf8', highWaterMark: 1024 * 1024 })) {
        const text = carry + (chunk as string);
        const cut = lastRecordEnd(text);
        carry = text.slice(cut);
        if (cut > 0) yield text.slice(0, cut);
      }
      if (carry) yield carry;
    } else if (this.lines.length) {
      yield this.lines.join('');
    }
  }

  dispose(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = this.file = null;
    this.lines = [];
  }
}

/** The end of the last complete CSV record: a line break outside quotes. */
function lastRecordEnd(text: string): number {
  let inQuotes = false;
  let end = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) inQuotes = !inQuotes;
    else if (c === 10 && !inQuotes) end = i + 1;
  }
  return end;
}
