import { mkdtemp, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mboxSource } from '../../../ingest/mailbox/mbox-source.js';
import { messageKey } from '../../../ingest/mailbox/message-key.js';
import type { MailboxMessage } from '../../../ingest/mailbox/types.js';
import { generateReports, mboxEntry } from '../../../bench/generate-reports.js';

async function readAll(path: string, options: { quoting?: 'mboxrd' | 'mboxo'; batchSize?: number; max?: number } = {}): Promise<MailboxMessage[][]> {
  const batches: MailboxMessage[][] = [];
  const source = mboxSource({ path, ...(options.quoting ? { quoting: options.quoting } : {}) });
  for await (const batch of source.batches({ batchSize: options.batchSize ?? 100, maxMessageBytes: options.max ?? 1 << 20 })) batches.push(batch);
  return batches;
}

describe('mboxSource', () => {
  it('splits at From_ lines, drops the separator blank line, reads the From_ date', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'a.mbox');
    await writeFile(path, 'From a@b Sat Nov 28 05:35:31 2026\nSubject: one\n\nbody one\n\nFrom b@c Sun Nov 29 06:00:00 2026\nSubject: two\n\nbody two\n');
    const [batch] = await readAll(path);
    expect(batch!.map((m) => m.raw!.toString())).toEqual(['Subject: one\n\nbody one\n', 'Subject: two\n\nbody two\n']);
    expect(batch![0]!.deliveredAt?.toISOString()).toBe('2026-11-28T05:35:31.000Z');
    expect(batch![1]!.location).toMatch(/a\.mbox byte \d+$/);
  });

  it('undoes mboxrd quoting (one > removed from >*From lines) and mboxo quoting (>From only)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'q.mbox');
    await writeFile(path, 'From x Sat Nov 28 05:35:31 2026\nSubject: q\n\n>From here\n>>From there\n> From not quoted\nFrom-less\n');
    const [[rd]] = (await readAll(path)) as [[MailboxMessage]];
    expect(rd.raw!.toString()).toBe('Subject: q\n\nFrom here\n>From there\n> From not quoted\nFrom-less\n');
    const [[o]] = (await readAll(path, { quoting: 'mboxo' })) as [[MailboxMessage]];
    expect(o.raw!.toString()).toBe('Subject: q\n\nFrom here\n>>From there\n> From not quoted\nFrom-less\n');
  });

  it('round-trips generated reports: each message has the key of its original bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'r.mbox');
    const originals = [...generateReports({ count: 30 })].map((r) => r.eml);
    originals[3] = originals[3]!.replace('Hello,', 'From the desk of\r\n>From quoted\r\nHello,');
    await writeFile(path, originals.map((e) => mboxEntry(e)).join(''));
    const messages = (await readAll(path, { batchSize: 7 })).flat();
    expect(messages).toHaveLength(30);
    messages.forEach((m, i) => {
      const expected = originals[i]!.replace(/\r\n/g, '\n');
      expect(m.raw!.toString()).toBe(expected.endsWith('\n') ? expected : `${expected}\n`);
      expect(m.key).toBe(messageKey(m.raw!).key);
    });
  });

  it('streams: a large mbox is read in batches with an oversized message hashed but not kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'big.mbox');
    const out = createWriteStream(path);
    for (const { eml } of generateReports({ count: 2000 })) out.write(mboxEntry(eml));
    out.write(mboxEntry(`Message-ID: <huge@x>\r\nSubject: huge\r\n\r\n${'y'.repeat(3_000_000)}\r\n`));
    await new Promise((r) => out.end(r));
    const batches = await readAll(path, { batchSize: 500, max: 1_000_000 });
    expect(batches.map((b) => b.length)).toEqual([500, 500, 500, 500, 1]);
    const huge = batches[4]![0]!;
    expect(huge).toMatchObject({ raw: null, messageId: '<huge@x>' });
    expect(huge.size).toBeGreaterThan(3_000_000);
    expect(huge.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
