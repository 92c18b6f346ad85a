import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../config/schema.js';
import { ingestJmrpMailbox } from '../../../ingest/jmrp/ingest-mailbox.js';
import { imapClientOptions, uidSet, imapSource, MailboxNeedsPersonError, type ImapSourceOptions } from '../../../ingest/mailbox/imap-source.js';
import { messageKey } from '../../../ingest/mailbox/message-key.js';
import type { MailboxSource } from '../../../ingest/mailbox/types.js';
import { generateReports, type ReportShape } from '../../../bench/generate-reports.js';
import { describeEachBackend } from '../../support/backends.js';
import { runCliCaptured } from '../../support/run-cli.js';
import { dovecotAvailable, dovecotSkipReason, startDovecot, type DovecotServer } from '../../support/dovecot.js';
import { startImapProxy, type CutRule, type ImapProxy } from '../../support/imap-proxy.js';

const SHAPES: ReportShape[] = ['arf', 'arf2026', 'legacy', 'not_a_report', 'malformed'];
const config = (maxMessageBytes = 10 * 1024 * 1024) => configSchema.parse({ jmrp: { recipientSalt: 'imap-test-salt', maxMessageBytes } });

/** A source that drops the IMAP connection (doveadm kick) after handing out batch `at`, before its commit. */
function kickAfterBatch(source: MailboxSource, at: number, server: DovecotServer): MailboxSource {
  return {
    kind: source.kind,
    name: source.name,
    archives: source.archives,
    async *batches(options) {
      let n = 0;
      for await (const batch of source.batches(options)) {
        n += 1;
        if (n === at) {
          await server.kick();
          await new Promise((r) => setTimeout(r, 300));
        }
        yield batch;
      }
    },
    settle: (outcome) => source.settle(outcome),
    flush: () => source.flush!(),
    close: () => source.close(),
  };
}

/** A source that drops the IMAP connection (doveadm kick) just before its settle number `at`. */
function kickBeforeSettle(source: MailboxSource, at: number, server: DovecotServer): MailboxSource {
  let n = 0;
  return {
    kind: source.kind,
    name: source.name,
    archives: source.archives,
    batches: (options) => source.batches(options),
    async settle(outcome) {
      n += 1;
      if (n === at) {
        await server.kick();
        await new Promise((r) => setTimeout(r, 300));
      }
      return source.settle(outcome);
    },
    flush: () => source.flush!(),
    close: () => source.close(),
  };
}

describe('uidSet: UIDs to move as sequence sets of ranges, cut to a length', () => {
  it('packs consecutive runs, keeps gaps, and stops before the length limit, saying how many it holds', () => {
    expect(uidSet([1, 2, 3, 4, 5, 7, 8, 9, 12], 1000)).toEqual(['1:5,7:9,12', 9]);
    expect(uidSet([5], 1000)).toEqual(['5', 1]);
    const many = Array.from({ length: 3000 }, (_, i) => i * 2 + 1); // no two consecutive
    const [set, count] = uidSet(many, 1000);
    expect(set.length).toBeLessThanOrEqual(1000);
    expect(count).toBe(set.split(',').length);
    expect(uidSet(many.slice(count), 1000)[0].startsWith(String(many[count]))).toBe(true);
    expect(uidSet(Array.from({ length: 20_000 }, (_, i) => i + 1), 1000)).toEqual(['1:20000', 20_000]);
  });
});

describe('imapClientOptions: how the secure setting reaches imapflow', () => {
  const base: ImapSourceOptions = {
    name: 'm',
    host: 'imap.example.com',
    secure: true,
    user: 'u',
    password: 'p',
    folder: 'INBOX',
    archiveFolder: 'a',
    quarantineFolder: 'q',
  };

  it('secure: true is TLS from the first byte on 993, certificates checked', () => {
    const o = imapClientOptions(base);
    expect(o).toMatchObject({ host: 'imap.example.com', port: 993, secure: true, auth: { user: 'u', pass: 'p' }, tls: { rejectUnauthorized: true } });
    // imapflow refuses secure together with doSTARTTLS: true
    expect(o.doSTARTTLS).toBeUndefined();
  });

  it("secure: 'starttls' is port 143 with the upgrade required (no plain-text fallback)", () => {
    expect(imapClientOptions({ ...base, secure: 'starttls' })).toMatchObject({ port: 143, secure: false, doSTARTTLS: true, tls: { rejectUnauthorized: true } });
  });

  it('secure: false is plain text on 143 and never tries STARTTLS', () => {
    expect(imapClientOptions({ ...base, secure: false })).toMatchObject({ port: 143, secure: false, doSTARTTLS: false });
  });

  it('an explicit port and tlsRejectUnauthorized: false are passed through for every mode', () => {
    for (const secure of [true, 'starttls', false] as const) {
      const o = imapClientOptions({ ...base, secure, port: 1143, tlsRejectUnauthorized: false });
      expect(o).toMatchObject({ port: 1143, secure: secure === true, tls: { rejectUnauthorized: false } });
    }
  });

  it('the config default is TLS', () => {
    const parsed = configSchema.parse({ jmrp: { mailboxes: [{ name: 'm', imap: { host: 'imap.example.com', user: 'u', password: 'p' } }] } });
    const imap = parsed.jmrp.mailboxes[0]!.imap!;
    expect(imap.secure).toBe(true);
    expect(imapClientOptions({ ...base, secure: imap.secure, port: imap.port, tlsRejectUnauthorized: imap.tlsRejectUnauthorized })).toMatchObject({ port: 993, secure: true, tls: { rejectUnauthorized: true } });
  });
});

describe.skipIf(!dovecotAvailable)(`IMAP mailboxes on a real Dovecot${dovecotAvailable ? '' : ` [${dovecotSkipReason}]`}`, () => {
  let server: DovecotServer;
  let client: ImapFlow | undefined;
  let offset = 0;

  /** The test's own connection, reopened after a kick (which drops every session of the user). */
  const admin = async (): Promise<ImapFlow> => {
    if (client?.usable) return client;
    client = new ImapFlow({ host: server.host, port: server.port, secure: false, doSTARTTLS: false, auth: { user: server.user, pass: server.password }, logger: false });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  let proxy: ImapProxy;

  beforeAll(async () => {
    server = await startDovecot();
    proxy = await startImapProxy(server);
  });
  afterAll(async () => {
    await client?.logout().catch(() => undefined);
    await proxy?.close();
    await server?.stop();
  });

  const options = (extra: Partial<ImapSourceOptions> = {}): ImapSourceOptions => ({
    name: 'imap-test',
    host: server.host,
    port: server.port,
    secure: false,
    user: server.user,
    password: server.password,
    folder: 'INBOX',
    archiveFolder: 'repwatch/archive',
    quarantineFolder: 'repwatch/quarantine',
    baseDelayMs: 50,
    ...extra,
  });
  /** Append `count` fresh reports (new indexes each time, so keys never repeat across tests). */
  const deliver = async (count: number) => {
    const all = [...generateReports({ count: offset + count, shapes: SHAPES, seed: 7 })].slice(offset);
    offset += count;
    const c = await admin();
    for (const { eml } of all) await c.append('INBOX', eml);
  };
  const messages = async (folder: string) => {
    const c = await admin();
    // imapflow answers STATUS of the selected folder from its cache: ask the server with none selected.
    if (c.mailbox) await c.mailboxClose();
    const status = await c.status(folder, { messages: true });
    return status ? (status.messages ?? 0) : 0;
  };
  /** Something of every message in a folder (read by the test's own connection). */
  const inFolder = async <T>(folder: string, query: { source?: boolean; envelope?: boolean }, pick: (m: { source?: Buffer; envelope?: { messageId?: string } }) => T): Promise<T[]> => {
    const c = await admin();
    const lock = await c.getMailboxLock(folder);
    try {
      if (!c.mailbox || c.mailbox.exists === 0) return [];
      return (await c.fetchAll('1:*', query)).map(pick);
    } finally {
      lock.release();
    }
  };
  const keysIn = (folder: string) => inFolder(folder, { source: true }, (m) => messageKey(m.source!).key);
  const messageIdsIn = (folder: string) => inFolder(folder, { envelope: true }, (m) => m.envelope?.messageId ?? null);

  it('TLS and required STARTTLS against a plain-text server fail before the password is sent (no fallback), at once and saying what to check', async () => {
    for (const secure of ['starttls', true] as const) {
      const from = proxy.clientText.length;
      const opened = proxy.connections;
      // Reconnects allowed: a TLS failure is a configuration problem, the same on every retry, so none is made.
      const source = imapSource(options({ port: proxy.port, secure, reconnectAttempts: 3, baseDelayMs: 5_000 }));
      const error = await source.backlog!().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MailboxNeedsPersonError);
      expect((error as Error).message).toMatch(new RegExp(`IMAP TLS to 127\\.0\\.0\\.1:${proxy.port} failed for mailbox imap-test: .+; check imap\\.secure`));
      expect(proxy.connections - opened).toBe(1);
      await source.close();
      const sent = proxy.clientText.slice(from);
      expect(sent).not.toContain(server.password);
      expect(sent).not.toMatch(/LOGIN|AUTHENTICATE/i);
    }
  });

  it('a wrong password or TLS against a plain port is exit 3 for ingest jmrp, ingest bounces and run, never retried as a lost connection', async () => {
    const home = await mkdtemp(join(tmpdir(), 'repwatch-imap-person-'));
    try {
      const imap = { host: server.host, port: server.port, user: server.user, folder: 'INBOX' };
      const configPath = join(home, 'repwatch.yaml');
      await writeFile(
        configPath,
        toYaml({
          jmrp: { recipientSalt: 'test-salt-123456', mailboxes: [{ name: 'wrong-password', imap: { ...imap, secure: false, password: 'not-the-password' } }] },
          bounces: { mailboxes: [{ name: 'tls-to-plain', imap: { ...imap, secure: true, password: server.password } }] },
        }),
      );
      const env = { REPWATCH_HOME: home, REPWATCH_CONFIG: configPath };
      const jmrp = await runCliCaptured(['ingest', 'jmrp', '--mailbox', 'wrong-password', '--format', 'json'], { env });
      expect(jmrp.code).toBe(3);
      expect(jmrp.stderr).toMatch(/IMAP login to 127\.0\.0\.1 as .+ failed for mailbox wrong-password/);
      expect(jmrp.stderr + jmrp.stdout).not.toContain('not-the-password');
      const bounces = await runCliCaptured(['ingest', 'bounces', '--mailbox', 'tls-to-plain', '--format', 'json'], { env });
      expect(bounces.code).toBe(3);
      expect(JSON.parse(bounces.stdout)).toMatchObject({ needsPerson: true, error: expect.stringMatching(/IMAP TLS to 127\.0\.0\.1:\d+ failed for mailbox tls-to-plain: .*check imap\.secure/) });
      // The scheduler's jobs record the same runs as needing a person.
      const run = await runCliCaptured(['run', '--job', 'jmrp', 'bounces', '--format', 'json'], { env });
      expect(run.code).toBe(3);
      const { outcomes } = JSON.parse(run.stdout) as { outcomes: { job: string; status: string; needsPerson?: boolean }[] };
      expect(outcomes.filter((o) => o.status === 'failed').map((o) => [o.job, o.needsPerson]).sort()).toEqual([
        ['bounces:tls-to-plain', true],
        ['jmrp:wrong-password', true],
      ]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('logs in with a wrong password as a problem for a person, without the password in the message', async () => {
    const source = imapSource(options({ password: 'wrong-password-here', reconnectAttempts: 0 }));
    await expect(source.backlog!()).rejects.toThrow(/IMAP login .* failed for mailbox imap-test/);
    await expect(source.backlog!()).rejects.not.toThrow(/wrong-password-here/);
    await source.close();
  });

  describeEachBackend('draining', (db) => {
    beforeEach(async () => {
      await db().query('truncate repwatch.feedback_report, repwatch.mail_message cascade');
      for (const folder of ['INBOX', 'repwatch.archive', 'repwatch.quarantine']) {
        if ((await messages(folder).catch(() => 0)) > 0) {
          const c = await admin();
          const lock = await c.getMailboxLock(folder);
          try {
            await c.messageDelete('1:*');
          } finally {
            lock.release();
          }
        }
      }
    });

    it('drains 500 reports in batches, creates the folders, archives and quarantines after commit', async () => {
      await deliver(500);
      expect(await messages('INBOX')).toBe(500);
      const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: imapSource(options()), batchSize: 200 });
      expect(result).toMatchObject({ seen: 500, stored: 500, duplicates: 0, complaints: 300, notAReport: 100, malformed: 100, quarantined: 100, archived: 500, settleFailures: 0 });
      expect(result.error).toBeUndefined();
      const folders = (await (await admin()).list()).map((f) => f.path);
      expect(folders).toEqual(expect.arrayContaining(['repwatch.archive', 'repwatch.quarantine']));
      expect(await messages('INBOX')).toBe(0);
      expect(await messages('repwatch.archive')).toBe(400);
      expect(await messages('repwatch.quarantine')).toBe(100);
      const [row] = await db().query<{ n: number; located: number }>(
        `select count(*)::int as n, count(*) filter (where location like 'INBOX uid %' and delivered_at is not null)::int as located from repwatch.mail_message`,
      );
      expect(row).toEqual({ n: 500, located: 500 });
    });

    it('a MOVE the server refuses is a settle failure, not an archived message; the messages stay in INBOX', async () => {
      await deliver(30);
      const source = imapSource(options({ moveEvery: 1000 }));
      try {
        const batches = source.batches({ batchSize: 50, maxMessageBytes: 1 << 20 })[Symbol.asyncIterator]();
        const first = await batches.next();
        const keys = (first.value as { key: string }[]).map((m) => m.key);
        expect(keys).toHaveLength(30);
        // The archive folder goes away after the source made it (a person, another client).
        const c = await admin();
        if (c.mailbox) await c.mailboxClose();
        await c.mailboxDelete('repwatch.archive');
        expect(await source.settle({ archive: keys, quarantine: [] })).toEqual({ moved: 0, failed: 0 }); // deferred
        const flushed = await source.flush!();
        expect(flushed).toMatchObject({ moved: 0, failed: 30, error: expect.stringMatching(/the server refused to move 30 message\(s\) to repwatch\/archive/) });
        await batches.return?.(undefined);
      } finally {
        await source.close();
      }
      expect(await messages('INBOX')).toBe(30);
      // The next drain recreates the folder and archives them.
      const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: imapSource(options()), batchSize: 200 });
      expect(result).toMatchObject({ seen: 30, archived: 30, settleFailures: 0 });
      expect(await messages('INBOX')).toBe(0);
    });

    it('a connection dropped mid-run without reconnects stops the run; the rerun stores the rest, nothing lost, nothing twice', async () => {
      await deliver(300);
      const first = await ingestJmrpMailbox({
        database: db(),
        config: config(),
        mailbox: kickAfterBatch(imapSource(options({ reconnectAttempts: 0 })), 2, server),
        batchSize: 50,
      });
      expect(first.error).toMatch(/imap-test/);
      // The drop came as batch 2 was handed over. Batches 1 and 2 were committed, and batch 3 too when
      // the source's read-ahead fetch of it finished before the kick; nothing could be moved (the
      // connection was gone), and the next read ended the run.
      expect([100, 150]).toContain(first.stored);
      expect(first.archived).toBe(0);
      expect(await messages('INBOX')).toBe(300);
      const second = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: imapSource(options()), batchSize: 50 });
      expect(second).toMatchObject({ seen: 300, duplicates: first.stored, stored: 300 - first.stored });
      expect(second.error).toBeUndefined();
      expect(await messages('INBOX')).toBe(0);
      expect((await messages('repwatch.archive')) + (await messages('repwatch.quarantine'))).toBe(300);
      const [row] = await db().query<{ n: number; keys: number; reports: number }>(
        `select count(*)::int as n, count(distinct message_key)::int as keys, (select count(*)::int from repwatch.feedback_report) as reports from repwatch.mail_message`,
      );
      expect(row).toEqual({ n: 300, keys: 300, reports: 180 });
    });

    it('with reconnects the same drop is survived in one run', async () => {
      await deliver(200);
      const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: kickAfterBatch(imapSource(options()), 2, server), batchSize: 50 });
      expect(result.error).toBeUndefined();
      expect(result).toMatchObject({ seen: 200, stored: 200, archived: 200 });
      expect(await messages('INBOX')).toBe(0);
    });

    it('a message over the size cap is quarantined without being downloaded', async () => {
      await deliver(3);
      await (await admin()).append('INBOX', `Message-ID: <big@test>\r\nFrom: x@y.example\r\nSubject: big\r\n\r\n${'z'.repeat(60_000)}\r\n`);
      const result = await ingestJmrpMailbox({ database: db(), config: config(20_000), mailbox: imapSource(options()) });
      expect(result).toMatchObject({ seen: 4, oversize: 1 });
      const rows = await db().query<{ raw: unknown; reason: string; message_id: string; quarantined: boolean }>(
        `select raw, reason, message_id, quarantined from repwatch.mail_message where classification = 'oversize'`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ raw: null, message_id: '<big@test>', quarantined: true });
      expect(rows[0]!.reason).toMatch(/larger than the 20000-byte cap \(maxMessageBytes\)/);
      expect(await messages('INBOX')).toBe(0);
      // Moved to the quarantine folder, and only there.
      expect(await messageIdsIn('repwatch.quarantine')).toContain('<big@test>');
      expect(await messageIdsIn('repwatch.archive')).not.toContain('<big@test>');
      expect((await messages('repwatch.archive')) + (await messages('repwatch.quarantine'))).toBe(4);
      const again = await ingestJmrpMailbox({ database: db(), config: config(20_000), mailbox: imapSource(options()) });
      expect(again.seen).toBe(0);
    });

    /** Every delivered message is in the archive or the quarantine folder exactly once, the one its
     * mail_message row says, INBOX is empty, and the database holds each message once. */
    const expectEachOnce = async (total: number) => {
      expect(await messages('INBOX')).toBe(0);
      const archived = (await keysIn('repwatch.archive')).sort();
      const quarantined = (await keysIn('repwatch.quarantine')).sort();
      expect(new Set(archived).size).toBe(archived.length);
      expect(new Set(quarantined).size).toBe(quarantined.length);
      const rows = await db().query<{ message_key: string; quarantined: boolean }>(`select message_key, quarantined from repwatch.mail_message`);
      expect(rows).toHaveLength(total);
      expect(new Set(rows.map((r) => r.message_key)).size).toBe(total);
      expect(archived).toEqual(rows.filter((r) => !r.quarantined).map((r) => r.message_key).sort());
      expect(quarantined).toEqual(rows.filter((r) => r.quarantined).map((r) => r.message_key).sort());
      const [reports] = await db().query<{ n: number; refs: number }>(`select count(*)::int as n, count(distinct message_ref)::int as refs from repwatch.feedback_report`);
      // arf, arf2026 and legacy of every five shapes are reports; malformed ones are quarantined.
      expect(reports).toEqual({ n: (total * 3) / 5, refs: (total * 3) / 5 });
      expect(quarantined).toHaveLength(total / 5);
    };

    // Moves every 50 messages (batches of 25: a MOVE to the archive and one to the quarantine after
    // every second batch) so that drops land between, inside and around mid-run moves and fetches.
    const BODY_FETCH = /UID FETCH .*BODY\.PEEK\[\]/i;
    const dropCases: { name: string; reconnects: boolean; cut?: CutRule; kickBeforeSettle?: number }[] = [
      { name: 'a MOVE that never reaches the server (second flush, quarantine MOVE)', reconnects: true, cut: { command: /UID MOVE/i, nth: 4, replyBytes: null } },
      { name: 'a MOVE the server ran whose reply is lost (second flush, after its archive MOVE)', reconnects: true, cut: { command: /UID MOVE/i, nth: 4, replyBytes: 0 } },
      { name: 'a MOVE the server ran whose reply is lost, without reconnects', reconnects: false, cut: { command: /UID MOVE/i, nth: 3, replyBytes: 0 } },
      { name: 'doveadm kick just before the second move flush, without reconnects', reconnects: false, kickBeforeSettle: 4 },
      { name: 'doveadm kick just before the third move flush', reconnects: true, kickBeforeSettle: 6 },
      { name: 'a cut 20 kB into the reply of a batch FETCH', reconnects: true, cut: { command: BODY_FETCH, nth: 3, replyBytes: 20_000 } },
      { name: 'a cut 20 kB into the reply of a batch FETCH, without reconnects', reconnects: false, cut: { command: BODY_FETCH, nth: 5, replyBytes: 20_000 } },
      { name: 'a cut in the middle of the listing (UID SEARCH)', reconnects: true, cut: { command: /UID SEARCH/i, nth: 1, replyBytes: 500 } },
      { name: 'a cut in the middle of the size FETCH of a batch read ahead', reconnects: true, cut: { command: /UID FETCH \S+ \(UID RFC822\.SIZE[^[]*$/i, nth: 2, replyBytes: 300 } },
    ];
    for (const drop of dropCases) {
      it(`moving every 50 of 300: ${drop.name}; after a rerun every message is stored and moved exactly once`, async () => {
        await deliver(300);
        const cutsBefore = proxy.cuts;
        const connectionsBefore = proxy.connections;
        if (drop.cut) proxy.cutAt(drop.cut);
        let source = imapSource(options({ port: proxy.port, moveEvery: 50, reconnectAttempts: drop.reconnects ? 5 : 0 }));
        if (drop.kickBeforeSettle) source = kickBeforeSettle(source, drop.kickBeforeSettle, server);
        const first = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: source, batchSize: 25 });
        if (drop.cut) {
          // The cut happened, at the command aimed at, before the server's reply to it was complete.
          expect(proxy.cuts).toBe(cutsBefore + 1);
          expect(proxy.lastCut!.command).toMatch(drop.cut.command);
          expect(proxy.lastCut).toMatchObject({ replyBytes: drop.cut.replyBytes ?? 0, completed: false });
        }
        // One connection, and one reconnect after the drop when allowed (so the drop did happen).
        expect(proxy.connections - connectionsBefore).toBe(drop.reconnects ? 2 : 1);
        if (drop.reconnects) {
          expect(first.error).toBeUndefined();
          expect(first).toMatchObject({ seen: 300, stored: 300, duplicates: 0, archived: 300, settleFailures: 0 });
        } else {
          expect(first.error).toMatch(/imap-test/);
          expect(first.stored).toBeGreaterThan(0);
          expect(first.stored).toBeLessThan(300);
          expect(first.duplicates).toBe(0);
        }
        const left = await messages('INBOX');
        // A MOVE whose reply was lost did happen: the server moved more than the run could count.
        if (!drop.reconnects && drop.cut?.replyBytes === 0) expect(left).toBeLessThan(300 - first.archived);
        const second = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: imapSource(options()), batchSize: 25 });
        expect(second.error).toBeUndefined();
        // The rerun sees what the first run could not move: what it stored is recognised by key.
        expect(second).toMatchObject({ seen: left, stored: 300 - first.stored, duplicates: left - (300 - first.stored), failed: 0, settleFailures: 0 });
        await expectEachOnce(300);
      });
    }
  });
});
