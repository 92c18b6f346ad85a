import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../../config/schema.js';
import { ingestJmrpMailbox } from '../../../ingest/jmrp/ingest-mailbox.js';
import { imapSource, type ImapSourceOptions } from '../../../ingest/mailbox/imap-source.js';
import type { MailboxSource } from '../../../ingest/mailbox/types.js';
import { generateReports, type ReportShape } from '../../../bench/generate-reports.js';
import { describeEachBackend } from '../../support/backends.js';
import { dovecotAvailable, dovecotSkipReason, startDovecot, type DovecotServer } from '../../support/dovecot.js';

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

  beforeAll(async () => {
    server = await startDovecot();
  });
  afterAll(async () => {
    await client?.logout().catch(() => undefined);
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

    it('a connection dropped mid-run without reconnects stops the run; the rerun stores the rest, nothing lost, nothing twice', async () => {
      await deliver(300);
      const first = await ingestJmrpMailbox({
        database: db(),
        config: config(),
        mailbox: kickAfterBatch(imapSource(options({ reconnectAttempts: 0 })), 2, server),
        batchSize: 50,
      });
      expect(first.error).toMatch(/imap-test/);
      // The drop came while batch 2 was read ahead: batches 1 and 2 were committed, neither could be
      // moved (the connection was gone), and reading batch 3 ended the run.
      expect(first.stored).toBe(100);
      expect(first.archived).toBe(0);
      expect(await messages('INBOX')).toBe(300);
      const second = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: imapSource(options()), batchSize: 50 });
      expect(second).toMatchObject({ seen: 300, duplicates: 100, stored: 200 });
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
      const [row] = await db().query<{ raw: unknown; reason: string; message_id: string }>(`select raw, reason, message_id from repwatch.mail_message where classification = 'oversize'`);
      expect(row).toMatchObject({ raw: null, message_id: '<big@test>' });
      expect(row!.reason).toMatch(/20000-byte cap/);
      expect(await messages('INBOX')).toBe(0);
      const again = await ingestJmrpMailbox({ database: db(), config: config(20_000), mailbox: imapSource(options()) });
      expect(again.seen).toBe(0);
    });
  });
});
