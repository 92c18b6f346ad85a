import { Option, type Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { configuredJobs, mailboxBacklogOf, sndsLinkStates } from '../../jobs/definitions.js';
import { timeSourceFor } from '../../jobs/time-source.js';
import { collectStatus, type StatusReport } from '../../jobs/status.js';

/** `repwatch status`: is every job fresh, every link alive? Exit 1 when not, for monitoring. */
export function registerStatus(program: Command, run: CommandRunner): void {
  program
    .command('status')
    .description('last success and failure of every job, SNDS link expiry, mailbox backlog, days without data; exit 1 when something is stale or a link has expired')
    .addOption(new Option('--format <format>', 'output format (default: table on a terminal, json otherwise)').choices(['table', 'json']))
    .action((options: { format?: string }) =>
      run(async (ctx) => {
        const format = parseFormat(options.format, ['table', 'json'], Boolean(ctx.stdout.isTTY));
        const database = await ctx.database();
        const now = await timeSourceFor(database, ctx.clock).now();
        const report = await collectStatus(database, ctx.config, configuredJobs(ctx.config), now, { linkStates: sndsLinkStates, backlog: mailboxBacklogOf });
        ctx.stdout.write(format === 'json' ? toJson(report) : renderTable(report));
        return report.ok ? ExitCode.ok : ExitCode.failed;
      }),
    );
}

function renderTable(report: StatusReport): string {
  const parts: string[] = [];
  parts.push(`repwatch status at ${report.now.toISOString()}: ${report.ok ? 'OK' : 'PROBLEMS'}\n`);
  parts.push(
    '\nJobs\n' +
      (report.jobs.length
        ? toTable(
            report.jobs.map((j) => ({
              ...j,
              lastSuccess: j.lastSuccessAt ? `${j.lastSuccessPeriod} (${age(j.lastSuccessAgeSeconds)} ago)` : 'never',
              lastFailure: j.lastFailureAt ? `${j.lastFailurePeriod} (${age(j.lastFailureAgeSeconds)} ago): ${j.lastFailureDetail ?? ''}` : '',
              next: j.nextRunAt?.toISOString().slice(0, 16).replace('T', ' ') ?? '',
            })),
            [{ key: 'job' }, { key: 'state' }, { key: 'lastSuccess', title: 'last success' }, { key: 'lastFailure', title: 'last failure', max: 60 }, { key: 'next', title: 'next run (UTC)' }],
          )
        : 'no jobs configured\n'),
  );
  if (report.feeds.length) {
    parts.push(
      '\nSNDS feeds\n' +
        toTable(
          report.feeds.map((f) => ({ ...f, missing: f.missingDays.length ? `${f.missingDays.length} of last 7` : '' })),
          [
            { key: 'feed' },
            { key: 'expiresOn', title: 'link expires' },
            { key: 'daysLeft', title: 'days left', align: 'right' },
            { key: 'linkState', title: 'link' },
            { key: 'lastDataDay', title: 'last data day' },
            { key: 'daysWithoutData', title: 'days without data', align: 'right' },
            { key: 'missing', title: 'missing days' },
          ],
        ),
    );
  }
  if (report.mailboxes.length) {
    parts.push(
      '\nMailboxes\n' +
        toTable(
          report.mailboxes.map((m) => ({ ...m, backlog: m.backlog ?? 'n/a', lastMessageAt: m.lastMessageAt?.toISOString() ?? 'never' })),
          [{ key: 'mailbox' }, { key: 'stream' }, { key: 'kind' }, { key: 'backlog', align: 'right' }, { key: 'lastMessageAt', title: 'last message stored' }],
        ),
    );
  }
  parts.push(
    '\nSchedulers\n' +
      (report.schedulers.length
        ? toTable(
            report.schedulers.map((s) => ({ ...s, state: s.alive ? 'alive' : 'no heartbeat' })),
            [{ key: 'instance' }, { key: 'state' }, { key: 'startedAt', title: 'started' }, { key: 'heartbeatAt', title: 'last heartbeat' }],
          )
        : 'none running (fine when cron calls `repwatch run`)\n'),
  );
  for (const p of report.problems) parts.push(`PROBLEM: ${p}\n`);
  for (const w of report.warnings) parts.push(`warning: ${w}\n`);
  return parts.join('');
}

function age(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 90) return `${seconds}s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes}m`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.round(hours / 24)}d`;
}
