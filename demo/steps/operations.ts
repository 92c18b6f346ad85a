import { join } from 'node:path';
import type { DemoStep } from '../run-demo.js';
import { sampleDir } from '../generate-sample.js';
import { configuredJobs, pipelineJobs, sndsLinkStates } from '../../jobs/definitions.js';
import { runDuePeriods, runnerEnvFor, type RunOutcome } from '../../jobs/runner.js';
import { collectStatus } from '../../jobs/status.js';

/**
 * The scheduler's wrapper at work on the sample: the complaint mailbox as a job, run twice at once
 * (one runs, the other is skipped), then once more (nothing due: the period has succeeded), and the
 * ledger as `repwatch status` shows it.
 */
export const operationsStep: DemoStep = {
  name: 'jobs: lock, ledger, status',
  async run(ctx) {
    const database = await ctx.database();
    const config = { ...ctx.config, jmrp: { ...ctx.config.jmrp, mailboxes: [{ name: 'demo-sample', mbox: join(sampleDir(), 'jmrp-complaints.mbox') }] } };
    const jobs = configuredJobs(config, { jmrp: pipelineJobs.jmrp });
    const env = runnerEnvFor(database, { ...ctx, config });
    const lines: string[] = [];
    const show = (label: string, outcomes: RunOutcome[], nothingDue: string) =>
      lines.push(`${label}: ${outcomes.map((o) => `${o.job} ${o.period} ${o.status}${o.status === 'succeeded' ? ` (${o.result.detail ?? ''})` : o.status === 'skipped' ? ` (${o.reason})` : ''}`).join('; ') || nothingDue}`);
    const [a, b] = await Promise.all(jobs.map((job) => [runDuePeriods(job, env, { recordSkip: true }), runDuePeriods(job, env, { recordSkip: true })]).flat());
    // A demo run again within the job's period (ten minutes) finds that period done by the earlier run.
    show('two runs at once', [...(a ?? []), ...(b ?? [])], 'nothing due: an earlier run of the demo already did the current period (run the demo again after the next one starts to see one run and one skip)');
    show('and once more', (await Promise.all(jobs.map((job) => runDuePeriods(job, env, { recordSkip: true })))).flat(), 'nothing due (the period has succeeded)');
    const status = await collectStatus(database, config, jobs, await env.time.now(), { linkStates: sndsLinkStates });
    for (const j of status.jobs) lines.push(`status: ${j.job} ${j.state}, last success ${j.lastSuccessPeriod ?? 'never'}, next run ${j.nextRunAt?.toISOString() ?? '?'}`);
    lines.push('(`repwatch schedule` runs every job like this on its cron schedule; `repwatch status` exits 1 when one is stale)');
    return lines.join('\n');
  },
};
