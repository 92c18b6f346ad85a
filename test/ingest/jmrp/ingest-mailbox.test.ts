import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../../config/schema.js';
import { ingestJmrpMailbox } from '../../../ingest/jmrp/ingest-mailbox.js';
import { retryQuarantined } from '../../../ingest/jmrp/retry-quarantined.js';
import { hashRecipient, protectRecipient } from '../../../ingest/jmrp/store-reports.js';
import { parseReport } from '../../../ingest/jmrp/parse-report.js';
import { createHash } from 'node:crypto';
import { emlSource } from '../../../ingest/mailbox/eml-source.js';
import { mboxSource } from '../../../ingest/mailbox/mbox-source.js';
import { buildReport, generateReports, mboxEntry, type ReportShape } from '../../../bench/generate-reports.js';
import { backends, describeEachBackend } from '../../support/backends.js';
import { runCliCaptured } from '../../support/run-cli.js';

const fixtures = join(import.meta.dirname, '../../fixtures/arf-public');
const config = (extra: Record<string, unknown> = {}): Config => configSchema.parse({ jmrp: { recipientSalt: 'test-salt-123456', ...extra } });

async function mboxOf(emls: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-'));
  const path = join(dir, 'reports.mbox');
  await writeFile(path, emls.map((eml) => mboxEntry(eml)).join(''));
  return path;
}

async function writeMbox(shapes: ReportShape[], count: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-'));
  const path = join(dir, 'complaints.mbox');
  await writeFile(path, [...generateReports({ count, shapes })].map((r) => mboxEntry(r.eml)).join(''));
  return path;
}

describeEachBackend('ingestJmrpMailbox', (db) => {
  /** One SNDS row for an IP, whatever the SNDS table's other required columns are (it belongs to another stage). */
  const insertSndsRow = async (ip: string) => {
    const columns = await db().query<{ column_name: string; data_type: string }>(
      `select column_name, data_type from information_schema.columns
       where table_schema = 'repwatch' and table_name = 'snds_row' and is_nullable = 'NO' and column_default is null and is_generated = 'NEVER'`,
    );
    const value = (c: { column_name: string; data_type: string }) =>
      c.column_name === 'ip' ? `'${ip}'` : /timestamp/.test(c.data_type) ? 'now()' : c.data_type === 'date' ? `'2026-10-01'` : /int|numeric/.test(c.data_type) ? '1' : c.data_type === 'boolean' ? 'false' : `'x'`;
    await db().query(`insert into repwatch.snds_row (${columns.map((c) => c.column_name).join(', ')}) values (${columns.map(value).join(', ')})`);
  };

  beforeEach(async () => {
    await db().query(`truncate repwatch.feedback_report, repwatch.mail_message cascade`);
  });

  it('loads every shape: complaints in analytics.complaint, other reports recorded but not counted, bad mail quarantined', async () => {
    const path = await writeMbox(['arf', 'arf2026', 'legacy', 'forwarded', 'auth_failure', 'not_a_report', 'malformed'], 70);
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path, name: 'test-box' }), batchSize: 25 });
    expect(result).toMatchObject({ seen: 70, stored: 70, duplicates: 0, complaints: 40, otherReports: 10, notAReport: 10, malformed: 10, quarantined: 10, failed: 0 });
    expect(result.error).toBeUndefined();
    const complaints = await db().query<{ n: number; origins: string[]; formats: string[]; nulls: number }>(
      `select count(*)::int as n, array_agg(distinct source_ip_origin order by source_ip_origin) as origins,
              array_agg(distinct report_format order by report_format) as formats,
              count(*) filter (where source_ip is null or day is null)::int as nulls
       from analytics.complaint where mailbox = 'test-box'`,
    );
    expect(complaints[0]).toMatchObject({ n: 40, origins: ['auth_results', 'reported'], formats: ['arf', 'jmrp_legacy'], nulls: 0 });
    const other = await db().query<{ feedback_type: string; n: number }>(`select feedback_type, count(*)::int as n from repwatch.feedback_report where not is_complaint group by 1`);
    expect(other).toEqual([{ feedback_type: 'auth-failure', n: 10 }]);
    const kinds = await db().query<{ classification: string; n: number }>(`select classification, count(*)::int as n from repwatch.mail_message group by 1 order by 1`);
    expect(kinds).toEqual([
      { classification: 'arf', n: 40 },
      { classification: 'jmrp_legacy', n: 10 },
      { classification: 'malformed', n: 10 },
      { classification: 'not_a_report', n: 10 },
    ]);
    expect(result.days.length).toBeGreaterThan(5);

    // Raw messages are kept byte for byte, but for the complainer's address, kept as its hash.
    const [first] = await db().query<{ raw: Uint8Array }>(`select raw from repwatch.mail_message order by id limit 1`);
    const generated = [...generateReports({ count: 1, shapes: ['arf'] })][0]!;
    const original = generated.eml.replace(/\r\n/g, '\n').split(generated.spec.recipient).join(hashRecipient(generated.spec.recipient, 'test-salt-123456'));
    expect(Buffer.from(first!.raw).toString()).toBe(original.endsWith('\n') ? original : `${original}\n`);
    // No kept message shows a complainer's address, quarantined ones included (an out-of-office reply
    // is not a report: its own From is its sender, not a complainer).
    const raws = await db().query<{ classification: string; raw: Uint8Array | null }>(`select classification, raw from repwatch.mail_message where classification <> 'not_a_report'`);
    expect(raws).toHaveLength(60);
    const recipients = [...generateReports({ count: 70, shapes: ['arf', 'arf2026', 'legacy', 'forwarded', 'auth_failure', 'not_a_report', 'malformed'] })]
      .filter((r) => r.spec.shape !== 'not_a_report')
      .map((r) => r.spec.recipient.toLowerCase());
    expect(recipients).toHaveLength(60);
    for (const { classification, raw } of raws) {
      const text = Buffer.from(raw ?? []).toString('latin1').toLowerCase();
      expect(text.length, classification).toBeGreaterThan(0);
      for (const recipient of recipients) expect(text.includes(recipient), `${classification} keeps ${recipient}`).toBe(false);
    }
    // Each quarantined message says why, as read at ingest.
    const reasons = await db().query<{ reason: string | null }>(`select reason from repwatch.mail_message where quarantined`);
    expect(reasons).toHaveLength(10);
    for (const { reason } of reasons) expect(reason).toMatch(/Feedback-Type/);

    const again = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path, name: 'test-box' }) });
    expect(again).toMatchObject({ seen: 70, stored: 0, duplicates: 70, complaints: 0 });
    expect((await db().query<{ n: number }>(`select count(*)::int as n from analytics.complaint`))[0]!.n).toBe(40);
  });

  it('notes the complaint days with each committed batch, so a run that stops before recomputing leaves them pending', async () => {
    await db().query('truncate repwatch.recompute_pending');
    const path = await writeMbox(['arf', 'legacy'], 30);
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path, name: 'pending-box' }), batchSize: 10, recompute: false });
    const pending = await db().query<{ day: string }>('select day from repwatch.recompute_pending order by day');
    expect(result.days.length).toBeGreaterThan(1);
    expect(pending.map((r) => r.day)).toEqual(result.days);
    // With its recompute (the default), nothing is left pending.
    const again = await writeMbox(['arf2026'], 5);
    await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: again, name: 'pending-box-2' }) });
    expect(await db().query('select day from repwatch.recompute_pending')).toEqual([]);
  });

  it('stores recipients as a salted hash by default, in the column and in the kept fields; plain or dropped when configured', async () => {
    // The original's subject greets the complainer by address, as spam often does.
    const raw = buildReport({ shape: 'arf', index: 1, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient: 'Person@Hotmail.com', campaign: 'c', fromDomain: 'd.example' })
      .replace(/Subject: Weekly offers #\d+/, 'Subject: Offers for person@hotmail.com');
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-'));
    await writeFile(join(dir, 'r.eml'), raw);
    await ingestJmrpMailbox({ database: db(), config: config(), mailbox: emlSource({ paths: [dir] }) });
    const [row] = await db().query<{ recipient: string; fields: Record<string, unknown>; subject: string }>('select recipient, fields, subject from repwatch.feedback_report');
    expect(row!.recipient).toBe(hashRecipient('person@hotmail.com', 'test-salt-123456'));
    expect(row!.fields['original-rcpt-to']).toBe(row!.recipient);
    expect(JSON.stringify(row)).not.toMatch(/person@hotmail/i);
    expect(row!.subject).toBe(`Offers for ${row!.recipient}`);
    // The kept bytes carry the hash too, wherever the address appeared; key and sha256 are the received bytes'.
    const everything = async () =>
      (await db().query<{ all: string }>(`select string_agg(m::text, ' ') || ' ' || string_agg(convert_from(m.raw, 'UTF8'), ' ') as all from repwatch.mail_message m`))[0]!.all;
    const kept = await everything();
    expect(kept).not.toMatch(/person@hotmail/i);
    expect(kept.split(row!.recipient).length - 1).toBeGreaterThanOrEqual(2);
    const [message] = await db().query<{ sha256: string; raw: Uint8Array }>('select sha256, raw from repwatch.mail_message');
    expect(message!.sha256).toBe(createHash('sha256').update(raw.replace(/\r\n/g, '\n')).digest('hex')); // of the bytes received (line ends normalised)
    // Reading the kept bytes again gives the same stored values (a rebuild changes nothing).
    const again = parseReport(Buffer.from(message!.raw));
    expect(again.kind === 'arf' && protectRecipient(again.report.recipients[0], 'hash', 'test-salt-123456', true)).toBe(row!.recipient);

    await db().query(`truncate repwatch.feedback_report, repwatch.mail_message cascade`);
    await ingestJmrpMailbox({ database: db(), config: config({ recipients: 'drop' }), mailbox: emlSource({ paths: [dir] }) });
    const [dropped] = await db().query<{ recipient: string | null; fields: Record<string, unknown> }>('select recipient, fields from repwatch.feedback_report');
    expect(dropped!.recipient).toBeNull();
    expect(dropped!.fields['original-rcpt-to']).toBeUndefined();
    const droppedKept = await everything();
    expect(droppedKept).not.toMatch(/person@hotmail/i);
    expect(droppedKept).toContain('[recipient removed]');

    await db().query(`truncate repwatch.feedback_report, repwatch.mail_message cascade`);
    await ingestJmrpMailbox({ database: db(), config: config({ recipients: 'plain' }), mailbox: emlSource({ paths: [dir] }) });
    const [plain] = await db().query<{ recipient: string | null; fields: Record<string, unknown> }>('select recipient, fields from repwatch.feedback_report');
    expect(plain!.recipient).toBe('Person@hotmail.com'); // domains compare case-insensitively: stored lower-cased
    const [plainMessage] = await db().query<{ raw: Uint8Array }>('select raw from repwatch.mail_message');
    expect(Buffer.from(plainMessage!.raw).equals(Buffer.from(raw))).toBe(true);
  });

  it('keeps no raw bytes (NULL, the reason says why) when the address shows in a spelling that cannot be rewritten; the complaint still counts', async () => {
    const raw = buildReport({ shape: 'arf', index: 4, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient: 'person@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
      .replace('Hello, these are this week=E2=80=99s offers.', 'Hello, see https://d.example/u?e=3Dperson&#0064;hotmail.com');
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-'));
    await writeFile(join(dir, 'r.eml'), raw);
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: emlSource({ paths: [dir] }) });
    expect(result).toMatchObject({ stored: 1, complaints: 1, quarantined: 0 });
    const [message] = await db().query<{ raw: Uint8Array | null; reason: string; byte_size: number }>('select raw, reason, byte_size from repwatch.mail_message');
    expect(message!.raw).toBeNull();
    expect(message!.byte_size).toBe(Buffer.byteLength(raw));
    expect(message!.reason).toMatch(/raw bytes not kept: the complainer's address could not be removed/);
  });

  it('without a configured salt one is generated once and kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-'));
    await copyFile(join(fixtures, 'yahoo-fbl-abuse.eml'), join(dir, 'y.eml'));
    await ingestJmrpMailbox({ database: db(), config: configSchema.parse({}), mailbox: emlSource({ paths: [dir] }) });
    const [salt] = await db().query<{ value: string }>(`select value from repwatch.stored_secret where name = 'jmrp.recipient_salt'`);
    expect(salt!.value).toMatch(/^[0-9a-f]{64}$/);
    const [row] = await db().query<{ recipient: string }>('select recipient from repwatch.feedback_report');
    expect(row!.recipient).toBe(hashRecipient('this-local-part-does-not-exist-on-yahoo@yahoo.com', salt!.value));
  });

  it('stores a complaint whose long field and subject end in an emoji at the cut (no lone surrogate reaches jsonb)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-emoji-'));
    const long = `${'x'.repeat(3999)}\u{1F600} tail`;
    const eml = buildReport({ shape: 'arf', index: 1, ip: '203.0.113.5', at: new Date('2026-10-01T12:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
      .replace('Feedback-Type: abuse', `Feedback-Type: abuse\r\nX-Long: ${long}`)
      .replace(/Subject: Weekly offers #\d+/, `Subject: ${'x'.repeat(999)}\u{1F600} tail`);
    await writeFile(join(dir, 'emoji.eml'), eml, 'utf8');
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: emlSource({ paths: [dir], name: 'emoji' }) });
    expect(result).toMatchObject({ seen: 1, complaints: 1, quarantined: 0, failed: 0 });
    const [row] = await db().query<{ long: string; subject: string }>(`select fields->>'x-long' as long, subject from repwatch.feedback_report`);
    expect(row!.long).toBe('x'.repeat(3999));
    expect(row!.subject).toBe('x'.repeat(999));
  });

  it('stores a complaint whose report fields hold NUL bytes (jsonb refuses \\u0000: it becomes U+FFFD)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-nul-'));
    const eml = buildReport({ shape: 'arf', index: 2, ip: '203.0.113.6', at: new Date('2026-10-01T12:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
      .replace('Feedback-Type: abuse', 'Feedback-Type: abuse\r\nX-Nul: a\u0000b');
    await writeFile(join(dir, 'nul.eml'), eml, 'latin1');
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: emlSource({ paths: [dir], name: 'nul' }) });
    expect(result).toMatchObject({ seen: 1, complaints: 1, quarantined: 0, failed: 0 });
    const [row] = await db().query<{ nul: string }>(`select fields->>'x-nul' as nul from repwatch.feedback_report`);
    expect(row!.nul).toBe('a\uFFFDb');
  });

  it('quarantined messages read again after a repair are stored and counted once; the rest keep their quarantine', async () => {
    const path = await writeMbox(['arf', 'malformed', 'malformed'], 3);
    const first = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path }) });
    expect(first).toMatchObject({ complaints: 1, quarantined: 2 });
    // A person repairs one kept message (what a parser fix does for many).
    const [broken] = await db().query<{ id: number }>(`select id from repwatch.mail_message where quarantined order by id limit 1`);
    await db().query(`update repwatch.mail_message set raw = convert_to(replace(convert_from(raw, 'UTF8'), 'Feedbak-Tipe abuse', 'Feedback-Type: abuse'), 'UTF8') where id = $1`, [broken!.id]);

    const clock = { now: () => new Date('2026-11-28T12:00:00Z') };
    const retried = await retryQuarantined({ database: db(), config: config(), clock });
    expect(retried).toMatchObject({ retried: 2, stored: 1, complaints: 1, stillQuarantined: 1, withoutBytes: 0 });
    expect(retried.days).toHaveLength(1);
    const rows = await db().query<{ id: number; quarantined: boolean; classification: string; reason: string }>(
      `select id, quarantined, classification, reason from repwatch.mail_message order by id`,
    );
    expect(rows.find((r) => r.id === broken!.id)).toMatchObject({ quarantined: false, classification: 'arf', reason: expect.stringMatching(/released from quarantine 2026-11-28T12:00:00/) });
    expect(rows.filter((r) => r.quarantined).map((r) => r.reason)).toEqual([expect.stringMatching(/Feedback-Type.*; read again 2026-11-28T12:00:00/)]);
    const complaints = async () => Number((await db().query<{ n: number }>(`select count(*)::int as n from analytics.complaint`))[0]!.n);
    expect(await complaints()).toBe(2);
    // The day's facts were recomputed with it.
    const [fact] = await db().query<{ n: number }>(`select coalesce(sum(complaints), 0)::int as n from repwatch.ip_day_fact where day = $1`, [retried.days[0]]);
    expect(fact!.n).toBeGreaterThanOrEqual(1);

    // Again: nothing new. The mbox read again: every message is known, nothing counted twice.
    expect(await retryQuarantined({ database: db(), config: config(), clock })).toMatchObject({ retried: 1, stored: 0 });
    expect(await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path }) })).toMatchObject({ stored: 0, duplicates: 3 });
    expect(await complaints()).toBe(2);
  });

  it('read again: bytes kept unprotected are protected on release, a non-report is released as such, a row that cannot be stored keeps its quarantine', async () => {
    const path = await writeMbox(['malformed'], 3);
    expect(await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path }) })).toMatchObject({ quarantined: 3 });
    const ids = (await db().query<{ id: number }>(`select id from repwatch.mail_message order by id`)).map((r) => Number(r.id));
    // 1: repaired, with the complainer's address in plain text (as kept before the bytes were protected).
    await db().query(
      `update repwatch.mail_message set raw = convert_to(replace(replace(convert_from(raw, 'UTF8'), 'Feedbak-Tipe abuse', 'Feedback-Type: abuse'), 'Version: 1', 'Version: 1' || chr(13) || chr(10) || 'Removal-Recipient: <plain.person@hotmail.com>'), 'UTF8') where id = $1`,
      [ids[0]],
    );
    // 2: now reads as not a report. 3: repaired, but its report row cannot be stored (one is there already).
    await db().query(`update repwatch.mail_message set raw = convert_to('From: someone@example.net' || chr(10) || 'Subject: hi' || chr(10) || chr(10) || 'hello' || chr(10), 'UTF8') where id = $1`, [ids[1]]);
    await db().query(`update repwatch.mail_message set raw = convert_to(replace(convert_from(raw, 'UTF8'), 'Feedbak-Tipe abuse', 'Feedback-Type: abuse'), 'UTF8') where id = $1`, [ids[2]]);
    await db().query(`insert into repwatch.feedback_report (message_ref, mailbox, report_format, is_complaint) values ($1, 'x', 'arf', false)`, [ids[2]]);

    const retried = await retryQuarantined({ database: db(), config: config(), clock: { now: () => new Date('2026-11-28T12:00:00Z') } });
    expect(retried).toMatchObject({ retried: 3, released: 2, stored: 1, complaints: 1, stillQuarantined: 1 });
    const rows = await db().query<{ id: number; quarantined: boolean; classification: string; reason: string; raw: string }>(
      `select id, quarantined, classification, reason, convert_from(raw, 'UTF8') as raw from repwatch.mail_message order by id`,
    );
    expect(rows[0]).toMatchObject({ quarantined: false, classification: 'arf' });
    expect(rows[0]!.raw).not.toContain('plain.person@hotmail.com');
    expect(rows[0]!.raw).toContain(hashRecipient('plain.person@hotmail.com', 'test-salt-123456'));
    expect(rows[1]).toMatchObject({ quarantined: false, classification: 'not_a_report', reason: expect.stringMatching(/released from quarantine/) });
    expect(rows[2]).toMatchObject({ quarantined: true, reason: expect.stringMatching(/^could not be stored: .*; read again 2026-11-28T12:00:00/) });
  });

  it('one report read from two messages (sent, and forwarded as an attachment) is counted once, in one batch or across runs', async () => {
    const direct = buildReport({ shape: 'arf', index: 5, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' });
    const forwarded = (id: string) =>
      [`From: Postmaster <postmaster@sender.example>`, 'To: jmrp@sender.example', 'Subject: FW: complaint', 'Date: Fri, 2 Oct 2026 12:00:00 +0000', `Message-ID: <${id}@sender.example>`,
        'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="fw"', '', '--fw', 'Content-Type: text/plain', '', 'FYI', '--fw', 'Content-Type: message/rfc822', '', direct, '--fw--', ''].join('\r\n');
    const complaints = async () => Number((await db().query<{ n: number }>('select count(*)::int as n from analytics.complaint'))[0]!.n);
    const together = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([direct, forwarded('fw1')]) }) });
    expect(together).toMatchObject({ stored: 2, complaints: 1, repeatedReports: 1 });
    expect(await complaints()).toBe(1);
    const later = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([forwarded('fw2')]) }) });
    expect(later).toMatchObject({ stored: 1, complaints: 0, repeatedReports: 1 });
    expect(await complaints()).toBe(1);
    const reasons = (await db().query<{ reason: string | null }>('select reason from repwatch.mail_message order by id')).map((r) => r.reason ?? '');
    expect(reasons[1]).toMatch(/the same report is already stored from an earlier message of this batch: not counted again/);
    expect(reasons[2]).toMatch(/the same report is already stored from message #\d+: not counted again/);
  });

  it('a report forwarded from Outlook (its own headers lost, its parts re-attached) is known by its content: counted once', async () => {
    const spec = { index: 6, ip: '203.0.113.10', at: new Date('2026-10-02T11:00:00Z'), recipient: 'r6@hotmail.com', campaign: 'c', fromDomain: 'd.example' };
    const direct = buildReport({ shape: 'arf', ...spec });
    const outlook = buildReport({ shape: 'forwarded', ...spec });
    const other = buildReport({ shape: 'forwarded', ...spec, recipient: 'r7@hotmail.com' }).replace('Message-ID: <fwd-6@', 'Message-ID: <fwd-6b@');
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([direct, outlook, other]) }) });
    expect(result).toMatchObject({ stored: 3, complaints: 2, repeatedReports: 1 });
    const rows = await db().query<{ content_key: string | null; report_key: string | null }>('select content_key, report_key from repwatch.feedback_report order by message_ref');
    expect(rows).toHaveLength(2);
    rows.forEach((r) => expect(r.content_key).toMatch(/^content:[0-9a-f]{64}$/));
    // Forwarded first, the direct copy later: the same.
    const again = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([direct.replace('Message-ID: <report-arf-6@', 'Message-ID: <report-arf-6-resent@')]) }) });
    expect(again).toMatchObject({ stored: 1, complaints: 0, repeatedReports: 1 });
  });

  it('a report without a Message-ID delivered twice (other Received lines) is counted once, by its content', async () => {
    const report = buildReport({ shape: 'arf', index: 10, ip: '203.0.113.13', at: new Date('2026-10-02T13:00:00Z'), recipient: 'r10@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
      .replace(/Message-ID: <report-arf-10@reporter\.example>\r\n/, '');
    expect(report).not.toMatch(/Message-ID: <report-/);
    const delivered = (hop: string) => `Received: from ${hop} by mx.sender.example; Fri, 2 Oct 2026 13:20:00 +0000\r\n${report}`;
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([delivered('relay-a'), delivered('relay-b')]) }) });
    expect(result).toMatchObject({ stored: 2, complaints: 1, repeatedReports: 1 });
  });

  it('a quarantined report released after its forwarded copy was stored is released without counting again', async () => {
    const spec = { index: 8, ip: '203.0.113.11', at: new Date('2026-10-02T12:00:00Z'), recipient: 'r8@hotmail.com', campaign: 'c', fromDomain: 'd.example' };
    const broken = buildReport({ shape: 'arf', ...spec }).replace('Feedback-Type: abuse', 'Feedbak-Tipe abuse');
    const first = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([broken, buildReport({ shape: 'forwarded', ...spec })]) }) });
    expect(first).toMatchObject({ quarantined: 1, complaints: 1 });
    await db().query(`update repwatch.mail_message set raw = convert_to(replace(convert_from(raw, 'UTF8'), 'Feedbak-Tipe abuse', 'Feedback-Type: abuse'), 'UTF8') where quarantined`);
    const retried = await retryQuarantined({ database: db(), config: config(), clock: { now: () => new Date('2026-11-28T12:00:00Z') } });
    expect(retried).toMatchObject({ retried: 1, released: 1, stored: 0, repeatedReports: 1, complaints: 0, stillQuarantined: 0 });
    const [row] = await db().query<{ quarantined: boolean; reason: string }>(`select quarantined, reason from repwatch.mail_message where id = (select min(id) from repwatch.mail_message)`);
    expect(row).toMatchObject({ quarantined: false, reason: expect.stringMatching(/the same report is already stored from message #\d+: not counted again/) });
    expect(Number((await db().query<{ n: number }>('select count(*)::int as n from analytics.complaint'))[0]!.n)).toBe(1);
  });

  it('keeps no complainer address anywhere, in any spelling: Original-Recipient only, subject, campaign, Message-ID, VERP return path', async () => {
    for (const mode of ['hash', 'drop'] as const) {
      await db().query('truncate repwatch.feedback_report, repwatch.mail_message cascade');
      const eml = buildReport({ shape: 'arf', index: 9, ip: '203.0.113.12', at: new Date('2026-10-03T09:00:00Z'), recipient: 'Carol.C@isp.example', campaign: 'spring/carol.c@isp.example', fromDomain: 'd.example' })
        .replace(/Original-Rcpt-To: [^\r]*\r\n/, 'Original-Recipient: rfc822;Carol.C@isp.example\r\n')
        .replace(/Original-Mail-From: [^\r]*/, 'Original-Mail-From: <bounce-9-carol.c=isp.example@bounce.d.example>')
        .replace(/Subject: Weekly offers #\d+/, 'Subject: carol.c@ISP.example, your cart is waiting')
        .replace('Message-ID: <orig-9@d.example>', 'Message-ID: <9.carol.c=isp.example@d.example>')
        .replace('User-Agent: SomeGenerator/1.0', 'User-Agent: FBL/1.0 (for carol.c@isp.example)')
        .replace(/Reported-Domain: [^\r]*/, 'Reported-Domain: carol.c@isp.example')
        .replace('List-Unsubscribe: <mailto:', 'List-Unsubscribe: <https://d.example/u?e=carol.c%40isp.example&h=carol.c&#64;isp.example>, <mailto:');
      expect(eml).not.toMatch(/Original-Rcpt-To/);
      const path = await mboxOf([eml]);
      const result = await ingestJmrpMailbox({ database: db(), config: config({ recipients: mode }), mailbox: mboxSource({ path }) });
      expect(result).toMatchObject({ complaints: 1, quarantined: 0 });
      const [row] = await db().query<{ everything: string; recipient: string | null; kept: boolean }>(
        `select m.raw is not null as kept, concat_ws(' ', f.recipient, f.subject, f.campaign, f.original_message_id, f.original_mail_from, f.user_agent, f.reported_domain, f.fields::text, f.report_key, m.reason, m.message_id, convert_from(m.raw, 'UTF8')) as everything, f.recipient
           from repwatch.feedback_report f join repwatch.mail_message m on m.id = f.message_ref`,
      );
      expect(row!.kept).toBe(true); // rewritten, not dropped as unverifiable
      expect(row!.everything.toLowerCase()).not.toContain('carol.c@isp.example');
      expect(row!.everything.toLowerCase()).not.toContain('carol.c=isp.example');
      expect(row!.everything.toLowerCase()).not.toMatch(/carol\.c(%40|&#64;)isp\.example/);
      expect(row!.recipient).toBe(mode === 'hash' ? hashRecipient('carol.c@isp.example', 'test-salt-123456') : null);
      expect(row!.everything).toContain(mode === 'hash' ? hashRecipient('carol.c@isp.example', 'test-salt-123456') : '[recipient removed]');
      // What is not an address stays: the campaign's own part, the sender's domain.
      expect(row!.everything).toContain('spring/');
      expect(row!.everything).toContain('bounce.d.example');
    }
  });

  it('hostile recipient lists (a report naming many complainers, or one 130,000 times; a bounce listing many): quarantined or kept without any address', async () => {
    const arf = (index: number, recipient: string) => buildReport({ shape: 'arf', index, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient, campaign: 'c', fromDomain: 'd.example' });
    const lines = (n: number, line: (i: number) => string) => Array.from({ length: n }, (_, i) => `${line(i)}\r\n`).join('');
    const crowd = arf(21, 'crowd@isp.example').replace('Version: 1\r\n', `Version: 1\r\n${lines(12, (i) => `Original-Rcpt-To: <crowd${i}@isp.example>`)}`);
    // Spread into push, 130,000 values overflowed the stack: the classifier threw and the bytes were kept as received.
    const repeated = arf(22, 'jane@isp.example').replace('Version: 1\r\n', `Version: 1\r\n${lines(130_000, () => 'Original-Rcpt-To: jane@isp.example')}`);
    const bounce = `From: mailer-daemon@b.example\r\nTo: fbl@sender.example\r\nSubject: undeliverable\r\nMessage-ID: <dsn-1@b.example>\r\n\r\n${lines(12, (i) => `Original-Recipient: rfc822;listed${i}@isp.example`)}`;
    const fine = arf(23, 'fine@isp.example');
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: mboxSource({ path: await mboxOf([crowd, repeated, bounce, fine]) }) });
    expect(result).toMatchObject({ seen: 4, stored: 4, complaints: 1, malformed: 2, notAReport: 1, quarantined: 2, failed: 0 });
    const rows = await db().query<{ classification: string; reason: string | null; raw: Uint8Array | null }>('select classification, reason, raw from repwatch.mail_message order by id');
    expect(rows.map((r) => [r.classification, r.raw !== null])).toEqual([['malformed', false], ['malformed', true], ['not_a_report', false], ['arf', true]]);
    expect(rows[0]!.reason).toMatch(/^13 distinct recipient addresses: not one complaint report; raw bytes not kept: 13 distinct recipient addresses/);
    expect(rows[1]!.reason).toBe('130001 recipient fields (1 distinct address): not one complaint report');
    expect(rows[2]!.reason).toMatch(/; raw bytes not kept: 12 distinct recipient addresses/);
    // No kept byte holds a complainer's address (compared as a boolean: a failure must not print megabytes).
    const addresses = ['crowd@isp.example', 'jane@isp.example', 'fine@isp.example', ...Array.from({ length: 12 }, (_, i) => [`crowd${i}@isp.example`, `listed${i}@isp.example`]).flat()];
    for (const row of rows) {
      const text = Buffer.from(row.raw ?? []).toString('latin1').toLowerCase();
      expect(addresses.filter((a) => text.includes(a)), row.classification).toEqual([]);
    }
    expect(Buffer.from(rows[1]!.raw!).toString('latin1').split(hashRecipient('jane@isp.example', 'test-salt-123456')).length - 1).toBe(130_002);
  });

  it('loads the four public samples: 3 complaints, 1 auth-failure, fields kept as jsonb', async () => {
    const result = await ingestJmrpMailbox({ database: db(), config: config(), mailbox: emlSource({ paths: [fixtures], name: 'public' }) });
    expect(result).toMatchObject({ seen: 4, complaints: 3, otherReports: 1, quarantined: 0 });
    const rows = await db().query<{ source_ip: string; source_ip_origin: string; day: string; report_format: string }>(
      'select source_ip, source_ip_origin, day, report_format from analytics.complaint order by day',
    );
    expect(rows).toEqual([
      { source_ip: '192.0.2.8', source_ip_origin: 'received', day: '2013-04-30', report_format: 'arf' },
      { source_ip: '203.0.113.245', source_ip_origin: 'auth_results', day: '2016-04-29', report_format: 'jmrp_legacy' },
      { source_ip: '10.0.0.1', source_ip_origin: 'reported', day: '2020-10-31', report_format: 'arf' },
    ]);
    const [rp] = await db().query<{ fields: Record<string, unknown> }>(`select fields from repwatch.feedback_report where fields->>'source' = 'Rackspace'`);
    expect(rp!.fields['abuse-type']).toBe('complaint');
  });

  it('prefers our known sending IPs (SNDS rows, configured pools) when deriving the sending IP', async () => {
    const raw = (ip: string, index: number) =>
      buildReport({ shape: 'arf2026', index, ip, at: new Date('2026-10-02T10:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
        .replace(`(sender IP is ${ip})`, '(sender IP is 192.0.2.77)');
    const dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-'));
    await writeFile(join(dir, 'pool.eml'), raw('203.0.113.45', 1));
    await writeFile(join(dir, 'snds.eml'), raw('198.51.100.60', 2));
    await writeFile(join(dir, 'unknown.eml'), raw('198.51.100.61', 3));
    await insertSndsRow('198.51.100.60');
    await ingestJmrpMailbox({ database: db(), config: configSchema.parse({ pools: { main: ['203.0.113.0/24'] } }), mailbox: emlSource({ paths: [dir] }) });
    const rows = await db().query<{ ip: string; origin: string }>(
      'select host(source_ip) as ip, source_ip_origin as origin from repwatch.feedback_report order by message_ref',
    );
    expect(rows).toEqual([
      { ip: '203.0.113.45', origin: 'received' },
      { ip: '198.51.100.60', origin: 'received' },
      { ip: '192.0.2.77', origin: 'auth_results' },
    ]);
    await db().query('truncate repwatch.snds_row');
  });
});

// Through the CLI on both backends: the embedded default is what a laptop runs.
for (const backend of backends()) {
  describe.skipIf(!backend.available)(`repwatch ingest jmrp (CLI) [${backend.name}${backend.available ? '' : `: SKIPPED, ${backend.skipReason}`}]`, () => {
    it('--mbox and --eml print a summary; a rerun counts nothing twice; usage errors exit 2', async () => {
      const handle = backend.name === 'postgres' ? await backend.create() : null;
      try {
        const env: NodeJS.ProcessEnv = handle ? { DATABASE_URL: handle.url! } : { REPWATCH_HOME: await mkdtemp(join(tmpdir(), 'repwatch-jmrp-home-')) };
        const path = await writeMbox(['arf', 'arf2026', 'legacy', 'malformed'], 20);
        const first = await runCliCaptured(['ingest', 'jmrp', '--mbox', path, '--format', 'json'], { env });
        expect(first.code).toBe(0);
        const [summary] = JSON.parse(first.stdout) as [{ stored: number; complaints: number; quarantined: number }];
        expect(summary).toMatchObject({ stored: 20, complaints: 15, quarantined: 5 });
        const table = await runCliCaptured(['ingest', 'jmrp', '--mbox', path, '--format', 'table'], { env });
        expect(table.code).toBe(0);
        expect(table.stdout).toMatch(/duplicates/);
        expect(table.stdout).toMatch(/mbox:complaints\.mbox\s+20\s+0\s+20/);
        const eml = await runCliCaptured(['ingest', 'jmrp', '--eml', join(fixtures, 'yahoo-fbl-abuse.eml'), join(fixtures, 'microsoft-jmrp-legacy-hotmail.eml')], { env });
        expect(eml.code).toBe(0);
        // Not on a terminal and no --format: JSON, as every other verb prints to a pipe.
        expect(JSON.parse(eml.stdout)).toEqual([expect.objectContaining({ seen: 2, stored: 2 })]);
        expect(readdirSync(fixtures)).toContain('yahoo-fbl-abuse.eml');
        expect((await runCliCaptured(['ingest', 'jmrp', '--mbox', path, '--eml', path], { env })).code).toBe(2);
        expect((await runCliCaptured(['ingest', 'jmrp'], { env })).code).toBe(2);
        expect((await runCliCaptured(['ingest', 'jmrp', '--mailbox', 'nope'], { env })).code).toBe(2);
        const missing = await runCliCaptured(['ingest', 'jmrp', '--mbox', '/nonexistent/x.mbox'], { env });
        expect(missing.code).toBe(2);
        expect(missing.stderr).toMatch(/--mbox \/nonexistent\/x\.mbox: no such file or folder/);
      } finally {
        await handle?.drop();
      }
    }, 120_000);
  });
}
