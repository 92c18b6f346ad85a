import { Option, type Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { VERSION } from '../main.js';
import { configuredJobs, sndsLinkStates } from '../../jobs/definitions.js';
import { runnerEnvFor } from '../../jobs/runner.js';
import { Scheduler } from '../../jobs/scheduler.js';
import { createJobMetrics } from '../../jobs/metrics.js';
import { startHttpServer } from '../../jobs/http-server.js';
import { collectStatus, complaintsLastDays, withTimeout } from '../../jobs/status.js';
import { redactError } from '../../lib/redact.js';
import { stopsItself } from '../../lib/signals.js';

/** The whole stop must end within 10 s: jobs get this long to finish, the rest is for closing. */
const JOB_GRACE_MS = 7_000;
const HARD_EXIT_MS = 9_500;

/** `repwatch schedule`: the long-running scheduler, with optional health and metrics endpoints. */
export function registerSchedule(program: Command, run: CommandRunner): void {
  program
    .command('schedule')
    .description('run the jobs on their cron schedules until stopped (SIGTERM/SIGINT), catching up missed periods')
    .addOption(new Option('--http-port <port>', 'serve /healthz, /livez and /metrics on this port').argParser(parsePort))
    .addOption(new Option('--http-host <host>', 'address for the HTTP endpoints (0.0.0.0 in a container, where the port is published)').default('127.0.0.1'))
    .action((options: { httpPort?: number; httpHost: string }) =>
      run(async (ctx) => {
        const jobs = configuredJobs(ctx.config);
        const database = await ctx.database();
        // The scheduler replaces the environment's abort signal with its own (aborted on SIGTERM).
        const env = runnerEnvFor(database, ctx);
        const time = env.time;
        const metrics = createJobMetrics(async () => {
          const now = await time.now();
          // Scrapes read the database only: counting an IMAP backlog would log in on every scrape.
          return {
            status: await collectStatus(database, ctx.config, jobs, now, { linkStates: sndsLinkStates }),
            complaints7d: await complaintsLastDays(database, now, 7),
          };
        });
        const scheduler = new Scheduler({
          env: { ...env, metrics },
          jobs,
          version: VERSION,
          httpPort: options.httpPort ?? null,
        });
        if (jobs.length === 0) ctx.logger.warn('no jobs configured: add snds.feeds or jmrp.mailboxes to the configuration');

        let stopRequested: (signal: string) => void = () => undefined;
        const stopped = new Promise<string>((resolve) => (stopRequested = resolve));
        const onSignal = stopsItself((signal: NodeJS.Signals) => stopRequested(signal));
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);

        const http = options.httpPort === undefined
          ? null
          : await startHttpServer(options.httpPort, options.httpHost, {
              live: () => scheduler.live(),
              healthy: async () => {
                const live = scheduler.live();
                if (!live.ok) return live;
                try {
                  await withTimeout(database.query('select 1'), 2_000);
                  return { ok: true, detail: `ok: ${jobs.length} jobs scheduled` };
                } catch (error) {
                  return { ok: false, detail: `database unreachable: ${redactError(error)}` };
                }
              },
            }, metrics.registry);
        if (http) ctx.logger.info({ port: http.port, host: options.httpHost }, 'serving /healthz, /livez and /metrics');

        await scheduler.start();
        const signal = await stopped;
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        ctx.logger.info({ signal, inHand: scheduler.busyJobs() }, `received ${signal}: taking no new work, finishing the job in hand`);
        // Whatever hangs (a job that ignores its abort signal, a connection that will not close), the
        // process ends in time; the ledger already says what was interrupted.
        setTimeout(() => process.exit(ExitCode.ok), HARD_EXIT_MS).unref();
        const result = await scheduler.stop(JOB_GRACE_MS);
        await http?.close();
        if (!result.finished) {
          // A job is still inside its transaction: closing the pool would wait for it. Ending the
          // process drops the connection, and PostgreSQL rolls the transaction back.
          ctx.logger.warn({ interrupted: result.interrupted }, 'exiting with a job in hand; its transaction is rolled back and it runs again next time');
          process.exit(ExitCode.ok);
        }
        return ExitCode.ok;
      }),
    );
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--http-port must be a port number (0-65535), not "${value}"`);
  return port;
}
