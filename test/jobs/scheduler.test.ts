import { expect, it } from 'vitest';
import { describeEachBackend } from '../support/backends.js';
import { Scheduler } from '../../jobs/scheduler.js';
import { createJobMetrics } from '../../jobs/metrics.js';
import { collectStatus, complaintsLastDays } from '../../jobs/status.js';
import { sndsLinkStates } from '../../jobs/definitions.js';
import { runDuePeriods } from '../../jobs/runner.js';
import { INTERRUPTED } from '../../jobs/ledger.js';
import { configSchema } from '../../config/schema.js';
import type { JobDefinition } from '../../jobs/types.js';
import { dailyJob, gate, movableClock, testEnv } from './fake-jobs.js';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';

describeEachBackend('scheduler: catch-up on start, one run per job, stop, metrics', (db) => {
  const statuses = (job: string) =>
    db().query<{ status: string; detail: string | null }>('select status, detail from repwatch.pipeline_run where job = $1 order by id', [job]);

  const scheduler = (jobs: JobDefinition[], clock = movableClock('2026-11-28T07:00:00Z')) => {
    const env = testEnv(db(), clock);
    return new Scheduler({ env, jobs, sweepMs: 3_600_000, heartbeatMs: 3_600_000 });
  };

  it('catches up on start, does not start a job again while it runs, and stops cleanly when the job finishes', async () => {
    const ran: string[] = [];
    const release = gate();
    const started = gate();
    const job = dailyJob('s:start', async (c) => {
      ran.push(c.period);
      started.open();
      await release.promise;
      return {};
    }, 1);
    const s = scheduler([job]);
    await s.start();
    await started.promise;
    expect(await db().query(`select instance from repwatch.scheduler_instance where instance = 'test:1'`)).toHaveLength(1);
    s.trigger(job, 'tick'); // its next tick while it still runs
    release.open();
    const stopped = await s.stop(5_000);
    expect(stopped).toEqual({ finished: true, interrupted: [] });
    expect(ran).toEqual(['2026-11-28']);
    expect((await statuses('s:start')).map((r) => r.status)).toEqual(['succeeded']);
    expect(await db().query(`select instance from repwatch.scheduler_instance where instance = 'test:1'`)).toHaveLength(0);
  });

  it('on stop, a job that honours the abort signal ends and its run is marked interrupted (no backoff)', async () => {
    const started = gate();
    const job = dailyJob('s:abort', async (c) => {
      started.open();
      await new Promise<void>((resolve) => c.signal.addEventListener('abort', () => resolve()));
      throw new Error('stopped between batches');
    }, 1);
    const s = scheduler([job]);
    await s.start();
    await started.promise;
    expect((await s.stop(5_000)).finished).toBe(true);
    expect(await statuses('s:abort')).toEqual([{ status: 'failed', detail: INTERRUPTED }]);
  });

  it('on stop, a job that does not end in the grace time is marked interrupted, and runs again next time', async () => {
    const started = gate();
    const never = gate();
    let calls = 0;
    const job = dailyJob('s:stuck', async () => {
      calls += 1;
      if (calls === 1) {
        started.open();
        await never.promise;
      }
      return { rowsLoaded: 7 };
    }, 1);
    const s = scheduler([job]);
    await s.start();
    await started.promise;
    const stopped = await s.stop(100);
    expect(stopped.finished).toBe(false);
    expect(stopped.interrupted).toHaveLength(1);
    expect(await statuses('s:stuck')).toEqual([{ status: 'failed', detail: INTERRUPTED }]);
    // The stuck job finishing later does not turn the interrupted row into a success.
    never.open();
    await s.settled(); // its run has returned and tried to record its end
    expect((await statuses('s:stuck')).map((r) => r.status)).toEqual(['failed']);
    // The next start runs it again at once: an interruption is not a failure to back off from.
    const again = await runDuePeriods(job, testEnv(db(), movableClock('2026-11-28T07:00:30Z')), { recordSkip: true });
    expect(again.map((o) => o.status)).toEqual(['succeeded']);
  });

  it('an error in one job’s evaluation is reported and the scheduler goes on with the others', async () => {
    const ran: string[] = [];
    const broken: JobDefinition = { ...dailyJob('s:broken', async () => ({})), periodOf: () => { throw new Error('bad period rule'); } };
    const good = dailyJob('s:good', async (c) => {
      ran.push(c.period);
      return {};
    }, 1);
    const metrics = createJobMetrics(async () => ({ status: await collectStatus(db(), configSchema.parse({}), [], new Date(), { linkStates: sndsLinkStates }), complaints7d: 0 }));
    const env = { ...testEnv(db()), metrics };
    const s = new Scheduler({ env, jobs: [broken, good], sweepMs: 3_600_000, heartbeatMs: 3_600_000 });
    await s.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(s.live().ok).toBe(true);
    await s.stop(5_000);
    expect(ran).toEqual(['2026-11-28']);
    const { samples } = parsePrometheusText(await metrics.registry.metrics());
    expect(sampleValue(samples, 'repwatch_scheduler_errors_total', { loop: 'run' })).toBe(1);
  });

  it('metrics: run counters, rows, duration, and last success, link days and complaints read from the database', async () => {
    const config = configSchema.parse({ snds: { feeds: [{ name: 'main', dataUrl: 'https://snds.example/data', linkCreatedOn: '2026-11-10' }] } });
    const clock = movableClock('2026-11-28T07:00:00Z');
    const job = dailyJob('s:metrics', async () => ({ rowsIn: 12, rowsLoaded: 10, rowsRejected: 2, complaints: 3 }), 1);
    const metrics = createJobMetrics(async () => ({
      status: await collectStatus(db(), config, [job], clock.now(), { linkStates: sndsLinkStates }),
      complaints7d: await complaintsLastDays(db(), clock.now(), 7),
    }));
    await runDuePeriods(job, { ...testEnv(db(), clock), config, metrics }, { recordSkip: true });
    const text = await metrics.registry.metrics();
    const { samples, types } = parsePrometheusText(text);
    expect(types.get('repwatch_job_duration_seconds')).toBe('histogram');
    expect(sampleValue(samples, 'repwatch_job_duration_seconds_count', { job: 's:metrics', status: 'succeeded' })).toBe(1);
    expect(sampleValue(samples, 'repwatch_job_runs_total', { job: 's:metrics', status: 'succeeded' })).toBe(1);
    expect(sampleValue(samples, 'repwatch_rows_loaded_total', { job: 's:metrics' })).toBe(10);
    expect(sampleValue(samples, 'repwatch_rows_rejected_total', { job: 's:metrics' })).toBe(2);
    expect(sampleValue(samples, 'repwatch_complaints_loaded_total', { job: 's:metrics' })).toBe(3);
    expect(sampleValue(samples, 'repwatch_job_last_success_timestamp_seconds', { job: 's:metrics' })).toBe(Date.parse('2026-11-28T07:00:00Z') / 1000);
    expect(sampleValue(samples, 'repwatch_job_stale', { job: 's:metrics' })).toBe(0);
    expect(sampleValue(samples, 'repwatch_snds_link_days_left', { feed: 'main' })).toBe(12);
    expect(sampleValue(samples, 'repwatch_complaints_7d')).toBe(0);
  });
});
