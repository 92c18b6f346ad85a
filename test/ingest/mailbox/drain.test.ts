import { mkdtemp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { drainMailbox, type Classification } from '../../../ingest/mailbox/drain.js';
import { emlSource } from '../../../ingest/mailbox/eml-source.js';
import { messageKey } from '../../../ingest/mailbox/message-key.js';
import { insertMailMessages } from '../../../ingest/mailbox/sql.js';
import { maildirSource } from '../../../ingest/mailbox/maildir-source.js';
import { mboxSource } from '../../../ingest/mailbox/mbox-source.js';
import { describeEachBackend } from '../../support/backends.js';

const message = (i: number, body = 'hello') => `Message-ID: <m${i}@test.example>\r\nFrom: a@test.example\r\nSubject: ${i}\r\n\r\n${body} ${i}\r\n`;

/** A classifier for the generic loop: "bad" bodies are unusable, "boom" makes the classifier throw. */
const classify = (raw: Buffer): Classification => {
  const text = raw.toString();
  if (text.includes('boom')) throw new Error('classifier exploded');
  return text.includes('bad') ? { classification: 'malformed', quarantineReason: 'contains bad' } : { classification: 'ok' };
};

async function mbox(dir: string, bodies: string[]): Promise<string> {
  const path = join(dir, 'box.mbox');
  await writeFile(path, bodies.map((b) => `From sender Sat Nov 28 05:35:31 2026\n${b.replace(/\r\n/g, '\n')}\n`).join(''));
  return path;
}

describeEachBackend('drainMailbox', (db) => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'repwatch-drain-'));
    await db().query(`truncate repwatch.feedback_report, repwatch.mail_message cascade`);
  });

  const count = async (where = 'true') => Number((await db().query<{ n: number }>(`select count(*)::int as n from repwatch.mail_message where ${where}`))[0]!.n);

  it('stores every message once; a rerun and a duplicate in the same batch count nothing twice', async () => {
    const bodies = [message(1), message(2), message(3, 'bad'), message(2), message(4, 'boom')];
    const path = await mbox(dir, bodies);
    const first = await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20, batchSize: 2 });
    expect(first).toMatchObject({ seen: 5, stored: 2, duplicates: 1, quarantined: 2, failed: 0 });
    expect(first.error).toBeUndefined();
    expect(await count()).toBe(4);
    const reasons = await db().query<{ reason: string; location: string }>(`select reason, location from repwatch.mail_message where quarantined order by id`);
    expect(reasons.map((r) => r.reason)).toEqual(['contains bad', 'classifier failed: classifier exploded']);
    expect(reasons[0]!.location).toMatch(/box\.mbox byte \d+/);
    const again = await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(again).toMatchObject({ seen: 5, stored: 0, duplicates: 5, quarantined: 0 });
    expect(await count()).toBe(4);
    // The same key is a different message in another stream.
    const bounces = await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'bounces', classify, maxMessageBytes: 1 << 20 });
    expect(bounces.stored).toBe(2);
  });

  it('a message delivered again with other trace headers is recognised by its body and not stored or counted again', async () => {
    const received = (n: number) => `Received: from mx${n}.example by inbound.example; Sat, 28 Nov 2026 05:3${n}:00 +0000\r\n`;
    const first = message(1);
    const again = received(1) + message(1);
    const third = received(2) + received(1) + message(1);
    const bad = message(2, 'bad');
    const badAgain = received(3) + bad;
    // In one batch, then across runs: the copies follow the first copy's fate (archived, or quarantined).
    const path = await mbox(dir, [first, again, bad]);
    const one = await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(one).toMatchObject({ seen: 3, stored: 1, duplicates: 1, quarantined: 1 });
    expect(one.messages.find((m) => m.outcome === 'duplicate')?.reason).toMatch(/^delivered again: the same Message-ID and body/);
    const dir2 = await mkdtemp(join(tmpdir(), 'repwatch-drain-'));
    const later = await drainMailbox({ database: db(), source: mboxSource({ path: await mbox(dir2, [third, badAgain]) }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(later).toMatchObject({ seen: 2, stored: 0, duplicates: 2, quarantined: 0 });
    expect(later.messages.map((m) => m.reason)).toEqual([expect.stringMatching(/^delivered again/), 'quarantined earlier']);
    expect(await count()).toBe(2);
    // A copy repaired in an identity header (here its Subject) is another message, not another delivery.
    const dir4 = await mkdtemp(join(tmpdir(), 'repwatch-drain-'));
    const repaired = await drainMailbox({ database: db(), source: mboxSource({ path: await mbox(dir4, [received(4) + message(1).replace('Subject: 1', 'Subject: 1 (repaired)')]) }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(repaired).toMatchObject({ stored: 1, duplicates: 0 });
    expect(await count()).toBe(3);
    // Without a Message-ID the body alone identifies nothing: two such messages are two messages.
    const noId = (n: number) => `${received(n)}From: a@test.example\r\nSubject: no id\r\n\r\nsame body\r\n`;
    const dir3 = await mkdtemp(join(tmpdir(), 'repwatch-drain-'));
    const anonymous = await drainMailbox({ database: db(), source: mboxSource({ path: await mbox(dir3, [noId(1), noId(2)]) }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(anonymous).toMatchObject({ stored: 2, duplicates: 0 });
  });

  it('a classifier that throws, in a stream that protects the bytes it keeps: none are kept, the reason says so', async () => {
    // The stream would have removed personal data (storedRaw); it never got to, so keeping the bytes as
    // received would keep exactly what it removes. A stream without storedRaw keeps them as received.
    const path = await mbox(dir, [message(1, 'boom jane@isp.example'), message(2)]);
    const storedRaw = (raw: Buffer) => Buffer.from(raw.toString().replace('jane@isp.example', '[removed]'));
    const result = await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'jmrp', classify, storedRaw, maxMessageBytes: 1 << 20 });
    expect(result).toMatchObject({ stored: 1, quarantined: 1, failed: 0 });
    const rows = await db().query<{ raw: Uint8Array | null; reason: string | null; classification: string }>('select raw, reason, classification from repwatch.mail_message order by id');
    expect(rows[0]).toMatchObject({ raw: null, classification: 'malformed' });
    expect(rows[0]!.reason).toBe(
      "classifier failed: classifier exploded; raw bytes not kept: the classifier failed before personal data could be removed from them (the message itself stays in the mailbox)",
    );
    expect(rows[1]!.raw).not.toBeNull();

    await db().query('truncate repwatch.mail_message cascade');
    await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'bounces', classify, maxMessageBytes: 1 << 20 });
    const [asReceived] = await db().query<{ raw: Uint8Array | null; reason: string }>('select raw, reason from repwatch.mail_message where quarantined');
    expect(Buffer.from(asReceived!.raw!).toString()).toContain('boom jane@isp.example');
    expect(asReceived!.reason).toBe('classifier failed: classifier exploded');
  });

  it('keeps the raw bytes and records oversized messages without them', async () => {
    const path = await mbox(dir, [message(1), message(2, 'x'.repeat(5000))]);
    const result = await drainMailbox({ database: db(), source: mboxSource({ path }), stream: 'jmrp', classify, maxMessageBytes: 1000 });
    expect(result).toMatchObject({ stored: 1, quarantined: 1 });
    const rows = await db().query<{ raw: Uint8Array | null; byte_size: number; classification: string; reason: string }>(
      'select raw, byte_size, classification, reason from repwatch.mail_message order by id',
    );
    expect(Buffer.from(rows[0]!.raw!).toString()).toBe(message(1).replace(/\r\n/g, '\n'));
    expect(rows[1]).toMatchObject({ raw: null, classification: 'oversize' });
    expect(rows[1]!.byte_size).toBeGreaterThan(5000);
    expect(rows[1]!.reason).toMatch(/larger than the 1000-byte cap/);
  });

  it('a store step that fails for one message quarantines that one and keeps the others', async () => {
    const path = await mbox(dir, [message(1), message(2, 'poison'), message(3)]);
    const storedRefs: unknown[] = [];
    const result = await drainMailbox<Classification, number>({
      database: db(),
      source: mboxSource({ path }),
      stream: 'jmrp',
      classify,
      maxMessageBytes: 1 << 20,
      onCommitted: async (results) => {
        for (const r of results) if (r.outcome === 'stored') storedRefs.push(r.stored);
      },
      store: async (session, m) => {
        if (m.raw?.toString().includes('poison')) await session.query('select 1/0');
        return m.ref;
      },
    });
    expect(result).toMatchObject({ stored: 2, quarantined: 1, failed: 0 });
    const [row] = await db().query<{ reason: string }>('select reason from repwatch.mail_message where quarantined');
    expect(row!.reason).toMatch(/could not be stored: division by zero/);
    expect(storedRefs).toHaveLength(2);
    expect(storedRefs.every((ref) => typeof ref === 'number')).toBe(true);
  });

  it('Maildir: archives stored messages and quarantines the bad ones after commit, never deletes', async () => {
    const md = join(dir, 'Maildir');
    for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(md, sub), { recursive: true });
    await writeFile(join(md, 'new', '1.host'), message(1));
    await writeFile(join(md, 'new', '2.host'), message(2, 'bad'));
    await writeFile(join(md, 'cur', '3.host:2,'), message(3));
    const source = maildirSource({ path: md, name: 'md' });
    const result = await drainMailbox({ database: db(), source, stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(result).toMatchObject({ stored: 2, quarantined: 1, archived: 3 });
    expect(await readdir(join(md, 'new'))).toEqual([]);
    expect(await readdir(join(md, 'cur'))).toEqual([]);
    expect((await readdir(join(md, '.repwatch.archive', 'cur'))).sort()).toEqual(['1.host:2,S', '3.host:2,S']);
    expect(await readdir(join(md, '.repwatch.quarantine', 'cur'))).toEqual(['2.host:2,S']);
    // Delivered again (a crash before the move): recognised, and archived without a second row.
    await writeFile(join(md, 'new', '1b.host'), message(1));
    const again = await drainMailbox({ database: db(), source: maildirSource({ path: md, name: 'md' }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(again).toMatchObject({ seen: 1, stored: 0, duplicates: 1, archived: 1 });
    expect(await count()).toBe(3);
  });

  it('.eml files and folders, read only', async () => {
    const folder = join(dir, 'emls');
    await mkdir(folder);
    await writeFile(join(folder, 'a.eml'), message(1));
    await writeFile(join(folder, 'b.eml'), message(2));
    await writeFile(join(folder, 'notes.txt'), 'not mail');
    await writeFile(join(dir, 'c.eml'), message(3));
    const result = await drainMailbox({ database: db(), source: emlSource({ paths: [folder, join(dir, 'c.eml')] }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(result).toMatchObject({ seen: 3, stored: 3, archived: 0 });
    expect((await readdir(folder)).sort()).toEqual(['a.eml', 'b.eml', 'notes.txt']);
  });

  it('the same message over IMAP (CRLF) and from a file (LF) has one key', async () => {
    await writeFile(join(dir, 'crlf.eml'), message(9));
    await writeFile(join(dir, 'lf.eml'), message(9).replace(/\r\n/g, '\n'));
    const result = await drainMailbox({ database: db(), source: emlSource({ paths: [join(dir, 'crlf.eml'), join(dir, 'lf.eml')] }), stream: 'jmrp', classify, maxMessageBytes: 1 << 20 });
    expect(result).toMatchObject({ stored: 1, duplicates: 1 });
  });

  it('a key stored meanwhile by a concurrent run is skipped, not doubled (the COPY falls back to ON CONFLICT)', async () => {
    const raw = (i: number) => Buffer.from(message(i));
    const row = (i: number) => ({
      message: { ...messageKey(raw(i)), size: raw(i).length, raw: raw(i), location: `test ${i}`, deliveredAt: null },
      classification: 'ok',
      reason: null,
      quarantined: false,
    });
    const first = await db().transaction((s) => insertMailMessages(s, 'jmrp', 'box', [row(1), row(2)], true));
    expect(first.size).toBe(2);
    const second = await db().transaction((s) => insertMailMessages(s, 'jmrp', 'box', [row(2), row(3)], true));
    expect([...second.keys()]).toEqual([row(3).message.key]);
    // Another delivery of message 3 stored meanwhile by another run (same body key, other bytes): skipped too.
    const redelivered = { ...row(4), bodyKey: 'm3|body:x' };
    await db().transaction((s) => insertMailMessages(s, 'jmrp', 'box', [{ ...row(5), bodyKey: 'm3|body:x' }], true));
    const third = await db().transaction((s) => insertMailMessages(s, 'jmrp', 'box', [redelivered, row(6)], true));
    expect([...third.keys()]).toEqual([row(6).message.key]);
    const stored = await db().query<{ location: string; raw: Uint8Array }>('select location, raw from repwatch.mail_message order by id');
    expect(stored.map((r) => r.location)).toEqual(['test 1', 'test 2', 'test 3', 'test 5', 'test 6']);
    expect(Buffer.from(stored[2]!.raw).equals(raw(3))).toBe(true);
  });

  it('raw bytes of every kind come back byte for byte (binary COPY)', async () => {
    const samples = [
      Buffer.from('Subject: "quoted" \\back\\slash\r\n\r\nline\ttab, comma; caf\u00e9 \u{1F600}\r\n'),
      Buffer.from([0x53, 0x3a, 0x20, 0x00, 0x01, 0x7f, 0x80, 0xe9, 0xff, 0x5c, 0x30, 0x31, 0x32, 0x22, 0x0d, 0x0a]),
      Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256)),
      Buffer.from('\\x41 looks like hex\n'),
    ];
    const rows = samples.map((raw, i) => ({
      message: { key: `bytes-${i}`, messageId: null, sha256: 'x'.repeat(64), size: raw.length, raw, location: `sample ${i}`, deliveredAt: null },
      classification: 'ok',
      reason: null,
      quarantined: false,
    }));
    await db().transaction((s) => insertMailMessages(s, 'jmrp', 'box', rows, true));
    const stored = await db().query<{ raw: Uint8Array }>(`select raw from repwatch.mail_message where message_key like 'bytes-%' order by message_key`);
    expect(stored.map((r) => Buffer.from(r.raw).toString('hex'))).toEqual(samples.map((b) => b.toString('hex')));
  });
});
