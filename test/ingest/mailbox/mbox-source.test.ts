import { mkdtemp, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mboxSource } from '../../../ingest/mailbox/mbox-source.js';
import { openMailboxSource } from '../../../ingest/mailbox/open-source.js';
import { configSchema } from '../../../config/schema.js';
import { parseConfig, ConfigError } from '../../../config/load-config.js';
import { bodyKeyOf, messageKey } from '../../../ingest/mailbox/message-key.js';
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

  it('starts a message only at a From_ line (sender, then a date with a year) that follows an empty line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'loose.mbox');
    const one = 'Subject: one\n\nDear all,\n\nFrom the desk of bob\nregards\nFrom the desk of alice, no blank line before\n';
    const two = 'Subject: two\n\nHi\nFrom foo@example.com Sat Nov 28 07:00:00 2026\n(a From_ line, but no blank line before it)\n';
    const three = 'Subject: three\n\nlast\n';
    const text = `From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n${one}\nFrom foo@example.com Sat Nov 28 07:00:00 2026\n${two}\nFrom a@b Sun Nov 29 06:00:00 2026\n${three}`;
    await writeFile(path, text);
    const messages = (await readAll(path)).flat();
    expect(messages.map((m) => m.raw!.toString())).toEqual([one, two, three]);
    expect(messages.map((m) => m.deliveredAt?.toISOString())).toEqual(['2011-07-08T12:08:34.000Z', '2026-11-28T07:00:00.000Z', '2026-11-29T06:00:00.000Z']);
    // Locations are the byte offsets of the From_ lines that start them.
    expect(messages.map((m) => Number(/byte (\d+)$/.exec(m.location)![1]))).toEqual([
      0,
      text.indexOf('\nFrom foo@example.com') + 1,
      text.indexOf('\nFrom a@b') + 1,
    ]);
    messages.forEach((m) => expect(m.key).toBe(messageKey(m.raw!).key));
  });

  it('the last message without a final line end keeps its bytes and key; its body key is that of the same message with one (.eml, IMAP)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'no-final-newline.mbox');
    await writeFile(path, 'From x@y Sat Nov 28 05:35:31 2026\nSubject: a\n\nbody a\n\nFrom z@y Sat Nov 28 05:36:00 2026\nMessage-ID: <b@x>\nSubject: b\n\nbody b');
    const [a, b] = (await readAll(path)).flat();
    expect(b!.raw!.toString()).toBe('Message-ID: <b@x>\nSubject: b\n\nbody b');
    // The key is of the bytes as they are (keys are never computed another way)…
    expect(b!.key).toBe(messageKey(Buffer.from('Message-ID: <b@x>\nSubject: b\n\nbody b')).key);
    expect(a!.key).toBe(messageKey(Buffer.from('Subject: a\n\nbody a\n')).key);
    // …and the body key, which catches other deliveries, ignores the missing line end, line end style and trace headers.
    const bodyKey = bodyKeyOf(b!.raw!, b!.messageId);
    expect(bodyKey).toBe(bodyKeyOf(Buffer.from('Message-ID: <b@x>\r\nSubject: b\r\n\r\nbody b\r\n'), '<b@x>'));
    expect(bodyKey).toBe(bodyKeyOf(Buffer.from('Received: from mx by me; Sat, 28 Nov 2026 05:36:00 +0000\nMessage-ID: <b@x>\nSubject:  b\n\nbody b\n'), '<b@x>'));
    // Another body, or another subject or sender, is another message.
    expect(bodyKey).not.toBe(bodyKeyOf(Buffer.from('Message-ID: <b@x>\nSubject: b\n\nbody b\n\n'), '<b@x>'));
    expect(bodyKey).not.toBe(bodyKeyOf(Buffer.from('Message-ID: <b@x>\nSubject: c\n\nbody b\n'), '<b@x>'));
    expect(bodyKey).not.toBe(bodyKeyOf(Buffer.from('Message-ID: <b@x>\nFrom: staff@hotmail.com\nSubject: b\n\nbody b\n'), '<b@x>'));
  });

  it('the same with CRLF line ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'crlf.mbox');
    await writeFile(path, 'From x@y Sat Nov 28 05:35:31 2026\r\nSubject: a\r\n\r\nFrom the desk of bob\r\n\r\nFrom z@y Sat Nov 28 05:36:00 2026\r\nSubject: b\r\n');
    const messages = (await readAll(path)).flat();
    expect(messages.map((m) => m.raw!.toString())).toEqual(['Subject: a\r\n\r\nFrom the desk of bob\r\n', 'Subject: b\r\n']);
  });

  it('the first line: a From_ line starts the first message; a "From " line without the From_ shape is content', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const first = join(dir, 'first.mbox');
    await writeFile(first, 'From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nSubject: x\n\nbody\n');
    const [[m]] = (await readAll(first)) as [[MailboxMessage]];
    expect(m).toMatchObject({ location: `${first} byte 0` });
    expect(m.raw!.toString()).toBe('Subject: x\n\nbody\n');
    expect(m.deliveredAt?.toISOString()).toBe('2011-07-08T12:08:34.000Z');

    const loose = join(dir, 'loose-first.mbox');
    await writeFile(loose, 'From the desk of bob\nSubject: y\n\nbody\n\nFrom a@b Sun Nov 29 06:00:00 2026\nSubject: z\n');
    const messages = (await readAll(loose)).flat();
    expect(messages.map((x) => x.raw!.toString())).toEqual(['From the desk of bob\nSubject: y\n\nbody\n', 'Subject: z\n']);
    expect(messages[0]).toMatchObject({ location: `${loose} byte 0`, deliveredAt: null });
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

  it('a line longer than a read (base64 without line breaks) is read in pieces and kept whole; message boundaries and quoting around it hold', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'long-line.mbox');
    const long = 'QUJD'.repeat(900_000); // 3.6 MB on one line: several reads
    const one = `Message-ID: <long@x>\nSubject: long\n\n${long}\n\nFrom a line that stays\n`;
    const two = 'Subject: after\n\n>From quoted\n';
    await writeFile(path, `From a@b Sat Nov 28 05:35:31 2026\n${one}\nFrom c@d Sat Nov 28 05:36:00 2026\n${two.replace('>From', '>>From')}`);
    const messages = (await readAll(path, { max: 8 << 20 })).flat();
    expect(messages.map((m) => m.raw!.toString())).toEqual([one, two]);
    expect(messages[0]!.key).toBe(messageKey(Buffer.from(one)).key);
    expect(messages[1]!.location).toBe(`${path} byte ${34 + one.length + 1}`);
  });

  it('an oversized message is hashed as its bytes would be, also when a read ends between the CR and LF of a long line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'over-crlf.mbox');
    const fromLine = 'From a@b Sat Nov 28 05:35:31 2026\n';
    const head = 'Message-ID: <over@x>\r\nSubject: huge\r\n\r\n';
    // The long line's CR is the last byte of the second 1 MiB read; its LF opens the third.
    const long = 'z'.repeat(2 * 2 ** 20 - 1 - fromLine.length - head.length);
    const huge = `${head}${long}\r\nlast line\r\n`;
    await writeFile(path, fromLine + huge);
    const [[message]] = (await readAll(path, { max: 100_000 })) as [[MailboxMessage]];
    expect(message).toMatchObject({ raw: null, messageId: '<over@x>', size: huge.length });
    expect(message.sha256).toBe(messageKey(Buffer.from(huge)).sha256);
    // The same message under the cap reads back whole, with the same key.
    const [[whole]] = (await readAll(path, { max: 8 << 20 })) as [[MailboxMessage]];
    expect(whole.raw!.toString()).toBe(huge);
    expect(whole.key).toBe(message.key);
  });

  it('a From_ line longer than a read whose first read holds only its first bytes still starts a message, whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'long-from.mbox');
    // The second From_ line starts 2 bytes before the first 1 MiB read ends and runs past the next one.
    const fromFirst = 'From a@b Sat Nov 28 05:35:31 2026\n';
    const one = `Subject: one\n\n${'x'.repeat(2 ** 20 - 3 - fromFirst.length - 15)}\n`;
    const head = `${fromFirst}${one}\n`;
    expect(head.length).toBe(2 ** 20 - 2);
    const fromLine = `From ${'A'.repeat(2 ** 20 + 100)} Sat Nov 28 05:36:00 2026\n`;
    await writeFile(path, `${head}${fromLine}Subject: two\n\nbody\n`);
    const messages = (await readAll(path, { max: 8 << 20 })).flat();
    expect(messages.map((m) => m.raw!.toString())).toEqual([one, 'Subject: two\n\nbody\n']);
  });

  it('keeps a last line of one byte without a line end (it is content, not a separator)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'one-byte.mbox');
    await writeFile(path, 'From a@b Sat Nov 28 05:35:31 2026\nSubject: s\n\nx');
    const [[message]] = (await readAll(path)) as [[MailboxMessage]];
    expect(message.raw!.toString()).toBe('Subject: s\n\nx');
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

describe('configured mbox mailbox: quoting', () => {
  const parse = (mailbox: Record<string, unknown>) => parseConfig({ jmrp: { mailboxes: [{ name: 'box', ...mailbox }] } }, { env: {} });

  it('accepts quoting mboxrd or mboxo on an mbox mailbox; absent means mboxrd', () => {
    expect(parse({ mbox: '/x.mbox', quoting: 'mboxo' }).jmrp.mailboxes[0]).toEqual({ name: 'box', mbox: '/x.mbox', quoting: 'mboxo' });
    expect(parse({ mbox: '/x.mbox', quoting: 'mboxrd' }).jmrp.mailboxes[0]!.quoting).toBe('mboxrd');
    expect(parse({ mbox: '/x.mbox' }).jmrp.mailboxes[0]).toEqual({ name: 'box', mbox: '/x.mbox' });
    expect(configSchema.parse({ bounces: { mailboxes: [{ name: 'b', mbox: '/b.mbox', quoting: 'mboxo' }] } }).bounces.mailboxes[0]!.quoting).toBe('mboxo');
  });

  it('rejects another quoting style, and quoting on a Maildir or IMAP mailbox, naming the key', () => {
    expect(() => parse({ mbox: '/x.mbox', quoting: 'mboxcl2' })).toThrow(ConfigError);
    expect(() => parse({ mbox: '/x.mbox', quoting: 'mboxcl2' })).toThrow(/jmrp\.mailboxes\[0\]\.quoting/);
    expect(() => parse({ maildir: '/var/mail/fbl', quoting: 'mboxo' })).toThrow(/jmrp\.mailboxes\[0\]\.quoting: quoting applies to an mbox mailbox only/);
    expect(() => parse({ imap: { host: 'h', user: 'u', password: 'p' }, quoting: 'mboxrd' })).toThrow(/quoting applies to an mbox mailbox only/);
  });

  it('openMailboxSource reads with the configured quoting (default mboxrd)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-mbox-'));
    const path = join(dir, 'q.mbox');
    await writeFile(path, 'From x Sat Nov 28 05:35:31 2026\nSubject: q\n\n>From here\n>>From there\n');
    const read = async (mailbox: Record<string, unknown>) => {
      const source = openMailboxSource(parse({ mbox: path, ...mailbox }).jmrp.mailboxes[0]!);
      const messages: MailboxMessage[] = [];
      for await (const batch of source.batches({ batchSize: 10, maxMessageBytes: 1 << 20 })) messages.push(...batch);
      expect(source).toMatchObject({ kind: 'mbox', name: 'box' });
      return messages.map((m) => m.raw!.toString());
    };
    expect(await read({ quoting: 'mboxo' })).toEqual(['Subject: q\n\nFrom here\n>>From there\n']);
    expect(await read({ quoting: 'mboxrd' })).toEqual(['Subject: q\n\nFrom here\n>From there\n']);
    expect(await read({})).toEqual(['Subject: q\n\nFrom here\n>From there\n']);
  });
});
