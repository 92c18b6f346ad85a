import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { dovecotAvailable, dovecotSkipReason, startDovecot, type DovecotServer } from '../../support/dovecot.js';
import { configSchema } from '../../../config/schema.js';
import { fixedClock } from '../../../lib/clock.js';
import { buildBounce } from '../../../demo/generate-bounces.js';
import { ingestBounces, runBouncesJob } from '../../../ingest/bounces/ingest-bounces.js';
import { maildirSource } from '../../../ingest/mailbox/maildir-source.js';

const clock = fixedClock('2026-11-25T06:00:00Z');
const bounces = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) =>
    buildBounce({ code: i % 2 ? 'S3140' : '5.7.606', ip: `203.0.113.${10 + (i % 10)}`, recipient: 'x@hotmail.com', senderDomain: 'shop.example', at: new Date(`2026-11-2${i % 4}T10:00:00Z`), id: `${prefix}-${i}` }),
  );
const GARBAGE = 'From: MAILER-DAEMON@x\nSubject: Undelivered\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n\n--b--\n';

describeEachBackend('bounces from a Maildir', (db) => {
  it('archives stored bounces and quarantines the unparseable one, only after commit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-maildir-'));
    for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(dir, sub));
    bounces('md', 6).forEach((text, i) => writeFileSync(join(dir, 'new', `1790000000.${i}.host`), text));
    writeFileSync(join(dir, 'new', '1790000000.99.host'), GARBAGE);
    const config = configSchema.parse({});
    const summary = await ingestBounces({ database: db(), config, clock }, maildirSource({ path: dir, name: 'md' }));
    expect(summary).toMatchObject({ seen: 7, stored: 6, quarantined: 1, archived: 7, evidence: 6 });
    expect(readdirSync(join(dir, 'new'))).toEqual([]);
    expect(readdirSync(join(dir, '.repwatch.archive', 'cur'))).toHaveLength(6);
    expect(readdirSync(join(dir, '.repwatch.quarantine', 'cur'))).toHaveLength(1);
    const [row] = await db().query<{ reason: string }>(`select reason from repwatch.mail_message where stream = 'bounces' and quarantined`);
    expect(row!.reason).toBe('delivery-status part without a recipient block');
  });
});

describe.skipIf(!dovecotAvailable)(`bounces from IMAP (local Dovecot)${dovecotAvailable ? '' : ` [${dovecotSkipReason}]`}`, () => {
  let server: DovecotServer;
  beforeAll(async () => {
    server = await startDovecot();
  });
  afterAll(async () => server?.stop());

  const withClient = async <T>(fn: (c: ImapFlow) => Promise<T>): Promise<T> => {
    const c = new ImapFlow({ host: server.host, port: server.port, secure: false, doSTARTTLS: false, auth: { user: server.user, pass: server.password }, logger: false });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.logout().catch(() => undefined);
    }
  };
  const messagesIn = async (c: ImapFlow, folder: string): Promise<number> => {
    const status = await c.status(folder, { messages: true }).catch(() => false as const);
    return status ? (status.messages ?? 0) : 0;
  };
  // Dovecot's Maildir++ uses '.' as the hierarchy separator: repwatch/archive is repwatch.archive.
  const count = (folder: string) => withClient((c) => messagesIn(c, folder));

  describeEachBackend('drain', (db) => {
    it('the scheduler job drains the configured bounce mailbox, archives and quarantines', async () => {
      const prefix = `imap-${Math.random().toString(36).slice(2)}`;
      await withClient(async (c) => {
        for (const folder of ['INBOX', 'repwatch.archive', 'repwatch.quarantine']) {
          if ((await messagesIn(c, folder)) > 0) {
            const lock = await c.getMailboxLock(folder);
            try {
              await c.messageDelete('1:*');
            } finally {
              lock.release();
            }
          }
        }
        for (const text of bounces(prefix, 5)) await c.append('INBOX', text.replace(/\n/g, '\r\n'));
        await c.append('INBOX', GARBAGE.replace(/\n/g, '\r\n'));
      });
      const config = configSchema.parse({
        bounces: { mailboxes: [{ name: 'ndr', imap: { host: server.host, port: server.port, secure: false, user: server.user, password: server.password } }] },
      });
      const [summary] = await runBouncesJob({ database: db(), config, clock });
      expect(summary).toMatchObject({ mailbox: 'ndr', seen: 6, stored: 5, quarantined: 1, archived: 6, evidence: 5 });
      expect(await count('INBOX')).toBe(0);
      expect(await count('repwatch.archive')).toBe(5);
      expect(await count('repwatch.quarantine')).toBe(1);
    });
  });
});
