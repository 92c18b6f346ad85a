import { closeSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode, NeedsPersonError, UsageError } from '../exit-codes.js';
import { toJson, toTable } from '../output.js';
import { ingestJmrpMailbox, type JmrpIngestResult } from '../../ingest/jmrp/ingest-mailbox.js';
import { holdsSeveralMessages } from '../../ingest/jmrp/parse-report.js';
import { retryQuarantined, UnknownMailboxError } from '../../ingest/jmrp/retry-quarantined.js';
import { emlSource } from '../../ingest/mailbox/eml-source.js';
import { maildirSource } from '../../ingest/mailbox/maildir-source.js';
import { mboxSource, type MboxQuoting } from '../../ingest/mailbox/mbox-source.js';
import type { MailboxConfig } from '../../ingest/mailbox/open-source.js';
import type { MailboxSource } from '../../ingest/mailbox/types.js';
import { MailboxNeedsPersonError } from '../../ingest/mailbox/imap-source.js';

interface IngestJmrpOptions {
  mbox?: string;
  maildir?: string;
  eml?: string[];
  mailbox?: string[];
  name?: string;
  quoting: MboxQuoting;
  batchSize?: string;
  retryQuarantined?: string | true;
  format?: 'table' | 'json';
}

/**
 * `repwatch ingest jmrp`: drain complaint mailboxes once. Without a source option every configured
 * `jmrp.mailboxes[]` entry is drained. Exit 0 when every message was recorded (quarantined ones
 * included: bad mail is normal mail), 1 when a mailbox or the database stopped a run, 3 when a login
 * or folder needs a person.
 */
export function registerIngestJmrp(ingest: Command, run: CommandRunner): void {
  ingest
    .command('jmrp')
    .description('load JMRP / ARF complaint reports from mailboxes (all configured ones unless a source is given)')
    .option('--mbox <path>', 'an mbox file (read only; mboxrd quoting unless --quoting mboxo)')
    .option('--maildir <path>', 'a Maildir (messages move to its .repwatch.archive / .repwatch.quarantine subfolders)')
    .option('--eml <paths...>', '.eml files or folders of .eml files (read only)')
    .option('--mailbox <names...>', 'configured jmrp.mailboxes[] entries by name')
    .option('--name <name>', 'mailbox name recorded for --mbox/--maildir/--eml (default derived from the path)')
    .addOption(new Option('--quoting <style>', 'mbox From-line quoting').choices(['mboxrd', 'mboxo']).default('mboxrd'))
    .option('--batch-size <n>', 'messages per transaction (default: imap.batchSize, 500 for files)')
    .option('--retry-quarantined [mailbox]', 'read quarantined messages again from their kept bytes (after a fix): store what now reads as a report (all mailboxes, or the one of this stored name)')
    .addOption(new Option('--format <format>', 'summary format (default: table on a terminal, json otherwise, as the other verbs)').choices(['table', 'json']))
    .action((options: IngestJmrpOptions) =>
      run(async (ctx) => {
        options.format ??= ctx.stdout.isTTY ? 'table' : 'json';
        const given = [options.mbox, options.maildir, options.eml, options.mailbox].filter((x) => x !== undefined).length;
        if (options.retryQuarantined !== undefined) {
          if (given > 0) throw new UsageError('--retry-quarantined reads what is stored: give it without --mbox, --maildir, --eml or --mailbox');
          const mailbox = typeof options.retryQuarantined === 'string' ? options.retryQuarantined : undefined;
          const retried = await retryQuarantined({ database: await ctx.database(), config: ctx.config, clock: ctx.clock, logger: ctx.logger, ...(mailbox ? { mailbox } : {}) }).catch((error: unknown) => {
            throw error instanceof UnknownMailboxError ? new UsageError(`--retry-quarantined: ${error.message}`) : error;
          });
          ctx.stdout.write(
            options.format === 'json'
              ? toJson(retried)
              : `${retried.retried} quarantined message(s) read again: ${retried.stored} now stored (${retried.complaints} complaints), ` +
                  `${retried.repeatedReports ? `${retried.repeatedReports} already stored from another message (not counted again), ` : ''}` +
                  `${retried.released - retried.stored - retried.repeatedReports} not a report, ${retried.stillQuarantined} still quarantined` +
                  `${retried.withoutBytes ? `; ${retried.withoutBytes} kept without their bytes cannot be read again here` : ''}\n`,
          );
          return ExitCode.ok;
        }
        if (given > 1) throw new UsageError('give one of --mbox, --maildir, --eml or --mailbox');
        const batchSize = options.batchSize === undefined ? undefined : Number(options.batchSize);
        if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 5000)) {
          throw new UsageError('--batch-size must be a whole number from 1 to 5000');
        }

        // A wrong path on the command line is a usage error (exit 2), said before anything runs.
        if (options.mbox) checkPath('--mbox', options.mbox, 'file');
        if (options.maildir) {
          checkPath('--maildir', options.maildir, 'folder');
          if (!['cur', 'new'].every((sub) => statOf(join(options.maildir!, sub))?.isDirectory())) {
            throw new UsageError(`--maildir ${options.maildir} is not a Maildir: it has no new/ or cur/ folder (a folder of .eml files is read with --eml)`);
          }
        }
        for (const path of options.eml ?? []) {
          if (checkPath('--eml', path, 'any').isFile() && holdsSeveralMessages(readHead(path))) {
            throw new UsageError(`--eml ${path}: this file is an mbox (several messages, each after a From_ line): read it with --mbox`);
          }
        }

        const targets: (MailboxConfig | MailboxSource)[] = [];
        if (options.mbox) targets.push(mboxSource({ path: options.mbox, quoting: options.quoting, ...(options.name ? { name: options.name } : {}) }));
        else if (options.maildir) targets.push(maildirSource({ path: options.maildir, name: options.name ?? `maildir:${options.maildir}`, logger: ctx.logger }));
        else if (options.eml) targets.push(emlSource({ paths: options.eml, ...(options.name ? { name: options.name } : {}) }));
        else {
          const configured = ctx.config.jmrp.mailboxes;
          const wanted = options.mailbox ?? configured.map((m) => m.name);
          for (const name of wanted) {
            const mailbox = configured.find((m) => m.name === name);
            if (!mailbox) throw new UsageError(`no mailbox named "${name}" in jmrp.mailboxes (configured: ${configured.map((m) => m.name).join(', ') || 'none'})`);
            targets.push(mailbox);
          }
          if (targets.length === 0) throw new UsageError('no JMRP mailbox configured (jmrp.mailboxes) and none given (--mbox, --maildir, --eml)');
        }

        const database = await ctx.database();
        const results: JmrpIngestResult[] = [];
        let needsPerson: string | null = null;
        for (const mailbox of targets) {
          try {
            results.push(await ingestJmrpMailbox({ database, config: ctx.config, mailbox, logger: ctx.logger, clock: ctx.clock, ...(batchSize ? { batchSize } : {}) }));
          } catch (error) {
            if (error instanceof MailboxNeedsPersonError) needsPerson = error.message;
            else throw error;
          }
        }
        for (const r of results) {
          if (r.needsPerson) needsPerson ??= r.error ?? null;
        }

        if (options.format === 'json') ctx.stdout.write(toJson(results));
        else ctx.stdout.write(summary(results));
        if (needsPerson) throw new NeedsPersonError(needsPerson);
        return results.some((r) => r.error || r.failed > 0) ? ExitCode.failed : ExitCode.ok;
      }),
    );
}

function summary(results: JmrpIngestResult[]): string {
  const table = toTable(
    results.map((r) => ({ ...r, status: r.error ? 'stopped' : 'ok' })),
    [
      { key: 'mailbox', max: 40 },
      { key: 'seen', align: 'right' },
      { key: 'stored', align: 'right' },
      { key: 'duplicates', align: 'right' },
      { key: 'complaints', align: 'right' },
      { key: 'incidents', align: 'right' },
      { key: 'repeatedReports', title: 'repeated', align: 'right' },
      { key: 'otherReports', title: 'other reports', align: 'right' },
      { key: 'notAReport', title: 'not a report', align: 'right' },
      { key: 'quarantined', align: 'right' },
      { key: 'archived', align: 'right' },
      { key: 'status' },
    ],
  );
  const lines = [table];
  for (const r of results) {
    if (r.error) lines.push(`${r.mailbox}: ${r.error}\n`);
    if (r.days.length) lines.push(`${r.mailbox}: complaints on ${r.days.length} day(s), ${r.days[0]} to ${r.days[r.days.length - 1]}\n`);
    for (const q of r.quarantine.slice(0, 20)) lines.push(`quarantined ${q.location}: ${q.reason ?? ''}\n`);
    if (r.quarantine.length > 20) lines.push(`… and ${r.quarantine.length - 20} more quarantined (repwatch.mail_message where quarantined)\n`);
  }
  return lines.join('');
}

function statOf(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function checkPath(option: string, path: string, want: 'file' | 'folder' | 'any'): Stats {
  const info = statOf(path);
  if (!info) throw new UsageError(`${option} ${path}: no such file or folder`);
  if (want === 'file' && !info.isFile()) throw new UsageError(`${option} ${path}: not a file`);
  if (want === 'folder' && !info.isDirectory()) throw new UsageError(`${option} ${path}: not a folder`);
  return info;
}

/** The first MiB of a file: enough to see a second From_ line in an mbox of reports. */
function readHead(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(1 << 20);
    return buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0));
  } finally {
    closeSync(fd);
  }
}
