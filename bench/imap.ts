/**
 * `npm run bench -- imap [--count N] [--batch-size N]`: the jmrp benchmark's reports (default 20,000)
 * delivered into a private local Dovecot (the one the IMAP tests start), then drained over IMAP through
 * the real path (imapflow, batches of about 200, database commit, then MOVE to the archive folder)
 * into PostgreSQL. Target: at least 1,000 reports/s. Needs `dovecot` (Debian's dovecot-imapd).
 */
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import pg from 'pg';
import { configSchema } from '../config/schema.js';
import { openDatabase } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { ingestJmrpMailbox } from '../ingest/jmrp/ingest-mailbox.js';
import { imapSource } from '../ingest/mailbox/imap-source.js';
import { generateReports } from './generate-reports.js';
import { dovecotAvailable, dovecotSkipReason, startDovecot } from './local-dovecot.js';
import { option, out, sec } from './support.js';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function run(args: string[]): Promise<void> {
  if (!dovecotAvailable) {
    out(`imap benchmark not run: ${dovecotSkipReason}`);
    process.exitCode = 1;
    return;
  }
  const count = Number(option(args, '--count') ?? 20_000);
  const batchSize = Number(option(args, '--batch-size') ?? 200);
  const moveEvery = option(args, '--move-every');
  const serverUrl = process.env.DATABASE_URL || DEFAULT_URL;
  const dbName = `repwatch_bench_imap_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const server = await startDovecot();
  try {
    // Log in once so Dovecot creates the Maildir, then deliver files straight into new/ (as an MDA
    // would): APPENDing 20,000 messages would measure APPEND, not the drain.
    const client = new ImapFlow({ host: server.host, port: server.port, secure: false, doSTARTTLS: false, auth: { user: server.user, pass: server.password }, logger: false });
    await client.connect();
    await client.status('INBOX', { messages: true });
    const t0 = performance.now();
    let i = 0;
    for (const { eml } of generateReports({ count, seed: 2026 })) {
      const file = join(server.maildir, 'new', `${1_700_000_000 + i}.M${i}P1.bench`);
      await writeFile(file, eml.replace(/\r\n/g, '\n'));
      await chown(file, server.owner.uid, server.owner.gid);
      i += 1;
    }
    // Let Dovecot index them before timing (what a mailbox that received them over days looks like).
    const status = await client.status('INBOX', { messages: true });
    await client.logout();
    out(`delivered ${count.toLocaleString('en')} reports into Dovecot's INBOX (${status ? status.messages : '?'} messages) in ${sec(performance.now() - t0)}`);

    await admin.query(`create database ${dbName}`);
    const url = new URL(serverUrl);
    url.pathname = `/${dbName}`;
    const database = await openDatabase({ url: url.toString() });
    await migrate(database);
    const config = configSchema.parse({ jmrp: { recipientSalt: 'bench-salt-0123456789' } });
    const source = imapSource({
      name: 'bench-imap',
      host: server.host,
      port: server.port,
      secure: false,
      user: server.user,
      password: server.password,
      folder: 'INBOX',
      archiveFolder: 'repwatch/archive',
      quarantineFolder: 'repwatch/quarantine',
      ...(moveEvery ? { moveEvery: Number(moveEvery) } : {}),
    });
    const t1 = performance.now();
    const result = await ingestJmrpMailbox({ database, config, mailbox: source, batchSize });
    const seconds = (performance.now() - t1) / 1000;
    await database.close();
    if (result.error) throw new Error(result.error);
    const rate = result.seen / seconds;
    out(`drained over IMAP (batches of ${batchSize}, commit, then MOVE to repwatch/archive): ${result.seen.toLocaleString('en')} reports in ${sec(seconds * 1000)}, ${fmt(rate)} reports/s, archived ${result.archived}, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
    out(`target >= 1,000 reports/s: ${rate >= 1000 ? 'MET' : 'NOT MET'}`);
  } finally {
    await server.stop();
    await admin.query(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
    await admin.end();
  }
}




function fmt(n: number): string {
  return Math.round(n).toLocaleString('en');
}
