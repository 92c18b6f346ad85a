import { Option, type Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { configuredJobs } from '../../jobs/definitions.js';
import { closeInterrupted } from '../../jobs/ledger.js';
import { runDuePeriods, runnerEnvFor, type RunOutcome } from '../../jobs/runner.js';
import { redactError } from '../../lib/redact.js';
import { stopsItself } from '../../lib/signals.js';

/** How long a stopped `run` waits for the job in hand before marking it interrupted and exiting. */
const RUN_GRACE_MS = 7_000;

/** `repwatch run`: every job that is due, once, now — for system cron and Kubernetes CronJobs. */
export function registerRun(program: Command, run: CommandRunner): void {
  program
    .command('run')
    .description('run every due job once (missed periods within the catch-up horizon included) and exit; for cron')
    .addOption(new Option('--job <name...>', 'only these jobs (a full name such as snds:main, or a kind such as snds)'))
    .addOption(new Option('--ignore-backoff', 'retry failed periods now instead of waiting for their backoff'))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']))
    .action((options: { job?: string[]; ignoreBackoff?: boolean; format?: string }) =>
      run(async (ctx) => {
        const format = parseFormat(options.format, ['table', 'json'], Boolean(ctx.stdout.isTTY));
        let jobs = configuredJobs(ctx.config);
        if (options.job) {
          const wanted = options.job;
          jobs = jobs.filter((j) => wanted.includes(j.name) || wanted.includes(j.kind));
          if (jobs.length === 0) throw new UsageError(`no configured job matches --job ${wanted.join(' ')}; configured: ${configuredJobs(ctx.config).map((j) => j.name).join(', ') || 'none'}`);
        }
        const database = await ctx.database();
        // SIGTERM/SIGINT (cron's timeout, a CronJob's deadline): no further job, the one in hand is
        // asked to stop, and after a grace a run still going is marked interrupted in the ledger (it
        // stayed 'running' until the next process called it abandoned) before the process exits 1.
        const controller = new AbortController();
        const active = new Set<number>();
        const env = { ...runnerEnvFor(database, ctx, { signal: controller.signal }), active };
        const onSignal = (signal: NodeJS.Signals) => {
          if (controller.signal.aborted) return;
          ctx.logger.warn({ signal, jobs: [...active] }, `received ${signal}: starting no further job; the job in hand is asked to stop`);
          controller.abort();
          setTimeout(() => {
            // The exit is certain: marking the runs gets 2 s (the database may be what hangs).
            const ids = [...active];
            const mark = ids.length ? closeInterrupted(database, ids, new Date()).catch(() => undefined) : Promise.resolve();
            void Promise.race([mark, new Promise((resolve) => setTimeout(resolve, 2_000))]).finally(() => process.exit(ExitCode.failed));
          }, RUN_GRACE_MS).unref();
        };
        stopsItself(onSignal);
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
        const outcomes: RunOutcome[] = [];
        const errors: { job: string; error: string }[] = [];
        try {
          for (const job of jobs) {
            if (controller.signal.aborted) break;
            try {
              outcomes.push(...(await runDuePeriods(job, env, { recordSkip: true, ignoreBackoff: options.ignoreBackoff })));
            } catch (error) {
              // The ledger itself could not be read or written (database gone): say so, go on with the others.
              ctx.logger.error({ job: job.name, err: error }, 'could not run the job');
              errors.push({ job: job.name, error: redactError(error) });
            }
          }
        } finally {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        }
        if (outcomes.length === 0) ctx.logger.info({ jobs: jobs.map((j) => j.name) }, 'nothing is due');

        const rows = [...outcomes.map(describe), ...errors.map((e) => ({ job: e.job, period: '', status: 'error', rowsLoaded: null, detail: e.error }))];
        ctx.stdout.write(
          format === 'json'
            ? toJson({ outcomes: rows })
            : rows.length
              ? toTable(rows, [
                  { key: 'job' },
                  { key: 'period' },
                  { key: 'status' },
                  { key: 'rowsLoaded', title: 'loaded', align: 'right' },
                  { key: 'detail', max: 100 },
                ])
              : 'nothing is due\n',
        );
        const failed = outcomes.filter((o) => o.status === 'failed');
        if (errors.length || controller.signal.aborted) return ExitCode.failed;
        if (failed.length === 0) return ExitCode.ok;
        return failed.every((o) => o.needsPerson) ? ExitCode.needsPerson : ExitCode.failed;
      }),
    );
}

function describe(o: RunOutcome): { job: string; period: string; status: string; rowsLoaded: number | null; detail: string | null; needsPerson?: boolean } {
  switch (o.status) {
    case 'succeeded':
      return { job: o.job, period: o.period, status: o.status, rowsLoaded: o.result.rowsLoaded ?? null, detail: o.result.detail ?? null };
    case 'failed':
      // needsPerson: retrying will not help (an expired link, a login or TLS setting to fix).
      return { job: o.job, period: o.period, status: o.status, rowsLoaded: null, detail: o.error, needsPerson: o.needsPerson };
    case 'skipped':
      return { job: o.job, period: o.period, status: o.status, rowsLoaded: null, detail: o.reason };
    case 'deferred':
      return { job: o.job, period: o.period, status: o.status, rowsLoaded: null, detail: `failed ${o.failures} time(s); next attempt after ${o.retryAt.toISOString()} (--ignore-backoff to retry now)` };
    case 'already-done':
      return { job: o.job, period: o.period, status: 'already done', rowsLoaded: null, detail: 'another process completed it meanwhile' };
  }
}
