import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { ingestBounces, type BounceIngestSummary } from '../../ingest/bounces/ingest-bounces.js';
import { emlSource } from '../../ingest/mailbox/eml-source.js';
import { maildirSource } from '../../ingest/mailbox/maildir-source.js';
import { mboxSource } from '../../ingest/mailbox/mbox-source.js';
import { batchSizeOf, openMailboxSource } from '../../ingest/mailbox/open-source.js';
import type { MailboxSource } from '../../ingest/mailbox/types.js';

interface Options {
  mbox?: string;
  maildir?: string;
  eml?: string[];
  mailbox?: string;
  format?: string;
}

/**
 * `repwatch ingest bounces`: NDRs from our own MTAs → bounces, block evidence, recomputed decisions.
 * Without a source option every configured `bounces.mailboxes[]` entry is drained.
 * Exit 0 when every message was stored or recognised (quarantined messages are recorded, not errors),
 * 1 when the run stopped early (database or mailbox failure), 2 for usage, 3 when a login must be fixed.
 */
export function registerIngestBounces(ingest: Command, run: CommandRunner): void {
  ingest
    .command('bounces')
    .description('load bounces (DSNs and plain-text NDRs) as block evidence: Microsoft codes, IP, recipient domain, time')
    .option('--mbox <path>', 'an mbox file (read only)')
    .option('--maildir <path>', 'a Maildir (messages move to .repwatch.archive after commit)')
    .option('--eml <paths...>', '.eml files or folders of them (read only)')
    .option('--mailbox <name>', 'a mailbox configured under bounces.mailboxes (default: all of them)')
    .option('--format <format>', 'table or json (default: table on a terminal, else json)')
    .action((options: Options) =>
      run(async (ctx) => {
        const given = [options.mbox, options.maildir, options.eml, options.mailbox].filter((x) => x !== undefined).length;
        if (given > 1) throw new UsageError('give one of --mbox, --maildir, --eml or --mailbox');
        const format = parseFormat(options.format, ['table', 'json'], ctx.stdout.isTTY);
        // Without a source option, every configured bounces.mailboxes[] entry, like `ingest jmrp`.
        const targets: { source: MailboxSource; batchSize: number }[] = [];
        const configured = ctx.config.bounces.mailboxes;
        if (options.mailbox || given === 0) {
          const chosen = options.mailbox ? configured.filter((m) => m.name === options.mailbox) : configured;
          if (options.mailbox && chosen.length === 0) {
            const names = configured.map((m) => m.name);
            throw new UsageError(`no mailbox named ${options.mailbox} under bounces.mailboxes${names.length ? ` (configured: ${names.join(', ')})` : ''}`);
          }
          if (chosen.length === 0) throw new UsageError('no bounce mailbox configured (bounces.mailboxes) and none given (--mbox, --maildir, --eml)');
          for (const mailbox of chosen) targets.push({ source: openMailboxSource(mailbox, { logger: ctx.logger }), batchSize: batchSizeOf(mailbox) });
        } else if (options.mbox) {
          targets.push({ source: mboxSource({ path: resolve(options.mbox), name: `mbox:${basename(options.mbox)}` }), batchSize: 500 });
        } else if (options.maildir) {
          targets.push({ source: maildirSource({ path: resolve(options.maildir), name: `maildir:${basename(resolve(options.maildir))}`, logger: ctx.logger }), batchSize: 500 });
        } else {
          targets.push({ source: emlSource({ paths: options.eml!.map((p) => resolve(p)) }), batchSize: 500 });
        }
        const database = await ctx.database();
        const summaries: BounceIngestSummary[] = [];
        for (const { source, batchSize } of targets) {
          summaries.push(await ingestBounces({ database, config: ctx.config, clock: ctx.clock, logger: ctx.logger }, source, { batchSize }));
        }
        ctx.stdout.write(format === 'json' ? toJson(summaries.length === 1 ? summaries[0] : summaries) : summaries.map(renderSummary).join('\n'));
        const errors = summaries.flatMap((s) => (s.error ? [s.error] : []));
        if (summaries.some((s) => s.needsPerson)) return ExitCode.needsPerson;
        return errors.length ? ExitCode.failed : ExitCode.ok;
      }),
    );
}


function renderSummary(s: BounceIngestSummary): string {
  const classes = Object.entries(s.byClassification).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const rows = [
    { what: 'messages read', value: s.seen },
    { what: 'stored', value: `${s.stored} (${classes})` },
    { what: 'already stored (skipped)', value: s.duplicates },
    { what: 'quarantined', value: s.quarantined },
    { what: 'failed', value: s.failed },
    { what: 'archived', value: s.archived },
    { what: 'bounced recipients', value: s.recipients },
    { what: 'block evidence rows', value: s.evidence },
    { what: 'cases relisted', value: s.relistedCases.length ? s.relistedCases.map((id) => `#${id}`).join(' ') : 0 },
    { what: 'days recomputed', value: s.days.length ? `${s.days.length} (${s.days[0]} .. ${s.days[s.days.length - 1]})` : 0 },
  ];
  let text = `bounces from ${s.mailbox}\n${toTable(rows, [{ key: 'what', title: '' }, { key: 'value', title: '' }])}`;
  if (s.error) text += `stopped early: ${s.error}\n`;
  return text;
}
