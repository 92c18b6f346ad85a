import { tmpdir } from 'node:os';
import { CronSchedule } from '../../jobs/cron.js';
import { dayOfTick, minuteOfTick } from '../../jobs/periods.js';
import type { JobContext, JobDefinition, JobResult } from '../../jobs/types.js';
import type { RunnerEnv } from '../../jobs/runner.js';
import type { Database } from '../../db/connection.js';
import { configSchema } from '../../config/schema.js';
import { fixedClock, type Clock } from '../../lib/clock.js';
import { silentLogger } from '../../lib/logger.js';
import { timeSourceFor } from '../../jobs/time-source.js';

/** Small stand-in jobs for the engine's tests: they record what ran, and can fail or wait on demand. */

export const DAY = 86_400_000;

export function dailyJob(name: string, run: (context: JobContext) => Promise<JobResult>, horizonDays = 3): JobDefinition {
  return {
    name,
    kind: 'test',
    schedule: new CronSchedule('15 6 * * *'),
    periodOf: (tick) => dayOfTick(tick, 'UTC'),
    catchUp: 'every',
    horizonMs: horizonDays * DAY,
    run,
  };
}

export function drainJob(name: string, run: (context: JobContext) => Promise<JobResult>): JobDefinition {
  return { name, kind: 'test', schedule: new CronSchedule('*/10 * * * *'), periodOf: minuteOfTick, catchUp: 'latest', horizonMs: DAY, run };
}

/** A clock a test moves by hand. */
export function movableClock(start: string): Clock & { set(at: string): void; advance(ms: number): void } {
  let now = new Date(start);
  return {
    now: () => new Date(now.getTime()),
    set(at) {
      now = new Date(at);
    },
    advance(ms) {
      now = new Date(now.getTime() + ms);
    },
  };
}

export function testEnv(database: Database, clock: Clock = fixedClock('2026-11-28T07:00:00Z'), overrides: Partial<RunnerEnv> = {}): RunnerEnv {
  return {
    database,
    config: configSchema.parse({}),
    logger: silentLogger(),
    clock,
    fetch: globalThis.fetch,
    home: tmpdir(),
    time: timeSourceFor(database, clock),
    instance: 'test:1',
    retry: { baseMs: 60_000, maxMs: 3_600_000 },
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** A promise with its resolve function, for jobs that wait until the test lets them go. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
