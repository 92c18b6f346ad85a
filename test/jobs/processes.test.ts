import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../support/backends.js';
import { addDays, utcDay } from '../../lib/clock.js';
import { INTERRUPTED } from '../../jobs/ledger.js';
import { buildOnce, logLines, spawnRepwatch, tempDir, waitFor, writeConfig, writeMbox, type Child } from './process-harness.js';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';

/**
 * The real binary, several processes, one PostgreSQL database: what cron, systemd and Kubernetes do.
 * PGlite is one process's database, so these run on PostgreSQL only.
 */
const postgres = backends().find((b) => b.name === 'postgres')!;
const title = postgres.available
  ? 'repwatch run / schedule as processes [postgres]'
  : `repwatch run / schedule as processes [postgres: SKIPPED, ${postgres.skipReason} — set DATABASE_URL to run them]`;

describe.skipIf(!postgres.available)(title, () => {
  const today = utcDay(new Date());
  const children: Child[] = [];
  let handle: TestDatabase | undefined;

  beforeAll(() => buildOnce(), 120_000);
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await handle?.drop();
    handle = undefined;
  });
  afterAll(async () => {
    await handle?.drop();
  });

  async function setup(messages: number) {
    handle = await postgres.create();
    const dir = tempDir();
    const mbox = writeMbox(dir, messages, addDays(today, -3));
    const config = writeConfig(dir, {
      jmrp: { mailboxes: [{ name: 'complaints', mbox }] },
      snds: { feeds: [{ name: 'main', dataUrl: 'http://127.0.0.1:9/unused', linkCreatedOn: addDays(today, -40) }] },
      reports: { outDir: `${dir}/reports` },
      // No DNS blocklist lookups: test traffic stays on 127.0.0.1.
      blocklists: { zones: [] },
    });
    const env = { DATABASE_URL: handle.url!, REPWATCH_HOME: dir };
    const start = (...args: string[]) => {
      const c = spawnRepwatch(['--config', config, ...args], env);
      children.push(c);
      return c;
    };
    const q = <R = Record<string, unknown>>(text: string, params: unknown[] = []) => handle!.database.query<R>(text, params);
    const count = async (text: string) => (await q<{ n: number }>(text))[0]!.n;
    return { dir, config, env, start, q, count };
  }

  it('two `repwatch run` at once: each (job, period) succeeds exactly once and every report is loaded once', async () => {
    const t = await setup(300);
    const [a, b] = [t.start('run', '--format', 'json'), t.start('run', '--format', 'json')];
    const [ea, eb] = await Promise.all([a.exited, b.exited]);
    expect([ea.code, eb.code], `stderr A:\n${a.stderr()}\nstderr B:\n${b.stderr()}`).toEqual([0, 0]);

    const perPeriod = await t.q<{ job: string; period: string; successes: number }>(
      `select job, period, count(*) filter (where status = 'succeeded')::int as successes from repwatch.pipeline_run group by job, period`,
    );
    expect(perPeriod.length).toBeGreaterThan(0);
    for (const row of perPeriod) expect(row, `${row.job} ${row.period}`).toMatchObject({ successes: 1 });
    expect(perPeriod.map((r) => r.job)).toContain('jmrp:complaints');
    expect(await t.count(`select count(*)::int as n from repwatch.mail_message`)).toBe(300);
    expect(await t.count(`select count(*)::int as n from repwatch.feedback_report`)).toBe(300);
    expect(await t.count(`select count(*)::int as n from (select original_message_id from repwatch.feedback_report group by 1 having count(*) > 1) d`)).toBe(0);
    // Each process said what it did: the succeeded outcomes add up to one per period.
    const outcomes = [a, b].flatMap((c) => (JSON.parse(c.stdout()) as { outcomes: { job: string; status: string }[] }).outcomes);
    expect(outcomes.filter((o) => o.job === 'jmrp:complaints' && o.status === 'succeeded')).toHaveLength(1);
    const skips = [a, b].flatMap((c) => logLines(c.stderr())).filter((l) => String(l.msg).startsWith('skipped:'));
    for (const s of skips) expect(String(s.msg)).toMatch(/already running in another process/);
  });

  it('kill -9 during a job: the ledger does not show it succeeded; the next run completes it without duplicates', async () => {
    const t = await setup(4000);
    const victim = t.start('run');
    await waitFor('the first committed batch', async () => (await t.count(`select count(*)::int as n from repwatch.mail_message`)) > 0);
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    const loaded = await t.count(`select count(*)::int as n from repwatch.mail_message`);
    const after = await t.q<{ status: string }>(`select status from repwatch.pipeline_run where job = 'jmrp:complaints'`);
    expect(after.map((r) => r.status)).not.toContain('succeeded');
    expect(loaded, 'killed before it finished').toBeLessThan(4000);

    const rerun = t.start('run', '--format', 'json');
    expect((await rerun.exited).code, rerun.stderr()).toBe(0);
    const rows = await t.q<{ status: string; detail: string | null }>(`select status, detail from repwatch.pipeline_run where job = 'jmrp:complaints' order by id`);
    expect(rows.map((r) => r.status)).toEqual(['failed', 'succeeded']);
    expect(rows[0]!.detail).toMatch(/^abandoned/);
    expect(await t.count(`select count(*)::int as n from repwatch.mail_message`)).toBe(4000);
    expect(await t.count(`select count(*)::int as n from repwatch.feedback_report`)).toBe(4000);
  });

  it('SIGTERM mid-job: the scheduler takes no new work, ends the job in hand and exits 0; nothing is left running', async () => {
    const t = await setup(4000);
    const scheduler = t.start('schedule');
    await waitFor('the first committed batch', async () => (await t.count(`select count(*)::int as n from repwatch.mail_message`)) > 0);
    const signalledAt = Date.now();
    scheduler.child.kill('SIGTERM');
    // A hang guard, not a speed target: the scheduler's own deadline is 10 s.
    const exit = await Promise.race([scheduler.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    expect(exit, `still running 15 s after SIGTERM\n${scheduler.stderr()}`).not.toBeNull();
    expect(exit).toEqual({ code: 0, signal: null });
    const tookMs = Date.now() - signalledAt;
    const rows = await t.q<{ status: string; detail: string | null }>(`select status, detail from repwatch.pipeline_run where job = 'jmrp:complaints' order by id`);
    expect(rows.map((r) => r.status)).not.toContain('running');
    const last = rows.at(-1)!;
    expect(last.status === 'succeeded' || (last.status === 'failed' && last.detail === INTERRUPTED), JSON.stringify(rows)).toBe(true);
    expect(await t.count(`select count(*)::int as n from repwatch.scheduler_instance`)).toBe(0);
    expect(logLines(scheduler.stderr()).some((l) => String(l.msg).startsWith('received SIGTERM'))).toBe(true);
    process.stderr.write(`[jobs] scheduler exited ${tookMs} ms after SIGTERM with ${rows.at(-1)!.status}\n`);

    // Whatever the stop left, the next run finishes it and nothing is counted twice.
    const rerun = t.start('run');
    expect((await rerun.exited).code, rerun.stderr()).toBe(0);
    expect(await t.count(`select count(*)::int as n from repwatch.feedback_report`)).toBe(4000);
  });

  it('schedule --http-port: /livez, /healthz and /metrics, scraped and parsed; status exits 1 for an expired link', async () => {
    const t = await setup(60);
    const scheduler = t.start('schedule', '--http-port', '0', '--http-host', '127.0.0.1');
    const port = await waitFor('the HTTP port in the log', async () => logLines(scheduler.stderr()).find((l) => l.msg === 'serving /healthz, /livez and /metrics')?.port as number | undefined);
    await waitFor('the JMRP job to succeed', async () => (await t.count(`select count(*)::int as n from repwatch.pipeline_run where job = 'jmrp:complaints' and status = 'succeeded'`)) === 1);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    const health = await fetch(`${base}/healthz`);
    expect([health.status, (await health.text()).trim()]).toEqual([200, expect.stringMatching(/^ok: \d+ jobs scheduled$/)]);
    expect((await fetch(`${base}/nope`)).status).toBe(404);

    const scrape = await fetch(`${base}/metrics`);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheusText(await scrape.text());
    const [run] = await t.q<{ finished_at: Date; rows_loaded: number }>(`select finished_at, rows_loaded from repwatch.pipeline_run where job = 'jmrp:complaints' and status = 'succeeded'`);
    const [complaints] = await t.q<{ n: number }>(`select coalesce(sum(incidents), 0)::int as n from analytics.complaint where day > $1`, [addDays(today, -7)]);
    expect(types.get('repwatch_job_duration_seconds')).toBe('histogram');
    expect(sampleValue(samples, 'repwatch_job_duration_seconds_count', { job: 'jmrp:complaints', status: 'succeeded' })).toBe(1);
    expect(sampleValue(samples, 'repwatch_job_last_success_timestamp_seconds', { job: 'jmrp:complaints' })).toBe(run!.finished_at.getTime() / 1000);
    expect(sampleValue(samples, 'repwatch_rows_loaded_total', { job: 'jmrp:complaints' })).toBe(60);
    expect(run!.rows_loaded).toBe(60);
    expect(sampleValue(samples, 'repwatch_complaints_7d')).toBe(complaints!.n);
    expect(complaints!.n).toBeGreaterThan(0);
    expect(sampleValue(samples, 'repwatch_snds_link_days_left', { feed: 'main' })).toBe(-10);
    expect(sampleValue(samples, 'repwatch_job_stale', { job: 'jmrp:complaints' })).toBe(0);

    const status = t.start('status', '--format', 'json');
    const statusExit = await status.exited;
    const report = JSON.parse(status.stdout()) as { ok: boolean; problems: string[]; feeds: { feed: string; expiresOn: string; daysLeft: number }[]; jobs: { job: string; state: string }[]; schedulers: { alive: boolean }[] };
    expect(statusExit.code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.feeds).toEqual([expect.objectContaining({ feed: 'main', expiresOn: addDays(today, -10), daysLeft: -10 })]);
    expect(report.problems.join('\n')).toMatch(/feed main: the automated-access link expired on/);
    expect(report.jobs.find((j) => j.job === 'jmrp:complaints')?.state).not.toBe('stale');
    expect(report.schedulers).toEqual([expect.objectContaining({ alive: true })]);

    scheduler.child.kill('SIGTERM');
    expect(await scheduler.exited).toEqual({ code: 0, signal: null });
  });
});
