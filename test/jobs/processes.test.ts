import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../support/backends.js';
import { addDays, daysBetween, utcDay } from '../../lib/clock.js';
import { INTERRUPTED } from '../../jobs/ledger.js';
import { buildOnce, removeBuild, logLines, spawnRepwatch, tempDir, waitFor, writeConfig, writeMbox, type Child } from './process-harness.js';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';
import { ipDataCsv, requestedDay, startSndsServer, type SndsServer } from './snds-server.js';

const KEY = 'Zq8pLm3Vx7Rt2Wk9Yb4Nc6Hd';
const IPS = Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 1}`);

/**
 * The real binary, several processes, one PostgreSQL database: what cron, systemd and Kubernetes do.
 * PGlite is one process's database, so these run on PostgreSQL only.
 */
const postgres = backends().find((b) => b.name === 'postgres')!;
const title = postgres.available
  ? 'repwatch run / schedule as processes [postgres]'
  : `repwatch run / schedule as processes [postgres: SKIPPED, ${postgres.skipReason} — set DATABASE_URL to run them]`;

/** The processes run on the real clock: a test that spans midnight UTC would see two todays. Close to
 * midnight, wait for it to pass (at most the margin), so each test sees one day throughout. */
async function awayFromMidnight(marginMs: number): Promise<void> {
  const now = Date.now();
  const untilMidnight = 86_400_000 - (now % 86_400_000);
  if (untilMidnight < marginMs) await new Promise((r) => setTimeout(r, untilMidnight + 1_000));
}

describe.skipIf(!postgres.available)(title, () => {
  let today = utcDay(new Date());
  beforeEach(async () => {
    await awayFromMidnight(3 * 60_000);
    today = utcDay(new Date());
  }, 4 * 60_000);
  const children: Child[] = [];
  let handle: TestDatabase | undefined;
  let snds: SndsServer | undefined;

  beforeAll(() => buildOnce(), 120_000);
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    snds?.release();
    await snds?.close();
    snds = undefined;
    await handle?.drop();
    handle = undefined;
  });
  afterAll(async () => {
    await handle?.drop();
    removeBuild();
  });

  async function setup(messages: number, options: { expiredFeed?: boolean } = {}) {
    handle = await postgres.create();
    snds = await startSndsServer((url) => {
      const day = requestedDay(url);
      return day ? ipDataCsv(day, IPS) : '';
    });
    const dir = tempDir();
    const mbox = writeMbox(dir, messages, addDays(today, -3));
    // The loopback server answers per day: ask it with date= like a legacy link.
    const feeds = [{ name: 'main', dataUrl: `${snds.url}/data?key=${KEY}`, linkCreatedOn: addDays(today, -10), dateParameter: true }];
    if (options.expiredFeed) feeds.push({ name: 'old', dataUrl: `${snds.url}/old?key=${KEY}`, linkCreatedOn: addDays(today, -40), dateParameter: true });
    const config = writeConfig(dir, {
      jmrp: { mailboxes: [{ name: 'complaints', mbox }] },
      snds: { feeds, refetchDays: 3 },
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
    /** The SNDS days the succeeded periods asked for: the 3 days before each period (catch-up
     * makes every tick of the last 3 days a period, whatever the time of day the test runs). */
    const expectedSndsDays = async () => {
      const periods = (await q<{ period: string }>(`select period from repwatch.pipeline_run where job = 'snds:main' and status = 'succeeded' order by period`)).map((r) => r.period);
      return { periods, days: [...new Set(periods.flatMap((p) => [addDays(p, -3), addDays(p, -2), addDays(p, -1)]))].sort() };
    };
    return { dir, config, env, start, q, count, expectedSndsDays };
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
    expect(perPeriod.map((r) => r.job)).toEqual(expect.arrayContaining(['jmrp:complaints', 'snds:main', 'report:weekly']));
    // SNDS: every tick of the catch-up horizon is a period, each fetching the 3 days before it; every
    // (IP, day) is loaded once however many periods and processes asked for it.
    const { periods, days } = await t.expectedSndsDays();
    expect(periods.length).toBe(3);
    expect(periods.at(-1)! >= addDays(today, -1)).toBe(true);
    expect((await t.q<{ day: string }>(`select distinct day from repwatch.snds_row order by day`)).map((r) => r.day)).toEqual(days);
    expect(await t.count(`select count(*)::int as n from repwatch.snds_row where feed = 'main'`)).toBe(days.length * IPS.length);
    expect(await t.count(`select count(*)::int as n from (select ip, day from repwatch.snds_row group by 1, 2 having count(*) > 1) d`)).toBe(0);
    expect(await t.count(`select count(*)::int as n from repwatch.mail_message`)).toBe(300);
    expect(await t.count(`select count(*)::int as n from repwatch.feedback_report`)).toBe(300);
    expect(await t.count(`select count(*)::int as n from (select original_message_id from repwatch.feedback_report group by 1 having count(*) > 1) d`)).toBe(0);
    // Each process said what it did: the succeeded outcomes add up to one per period.
    const outcomes = [a, b].flatMap((c) => (JSON.parse(c.stdout()) as { outcomes: { job: string; status: string }[] }).outcomes);
    expect(outcomes.filter((o) => o.job === 'jmrp:complaints' && o.status === 'succeeded')).toHaveLength(1);
    const skips = [a, b].flatMap((c) => logLines(c.stderr())).filter((l) => String(l.msg).startsWith('skipped:'));
    for (const s of skips) expect(String(s.msg)).toMatch(/already running in another process/);
    // The link's key never leaves the process: not in logs, output or the ledger.
    const ledger = await t.q<{ detail: string | null }>(`select detail from repwatch.pipeline_run`);
    for (const text of [a.stdout(), a.stderr(), b.stdout(), b.stderr(), JSON.stringify(ledger)]) expect(text).not.toContain(KEY);
  });

  it('kill -9 while an SNDS download is in flight: not recorded as succeeded; the next run loads the days once', async () => {
    const t = await setup(10);
    snds!.hold();
    const victim = t.start('run', '--job', 'snds');
    await snds!.held();
    await waitFor('the running row', async () => (await t.count(`select count(*)::int as n from repwatch.pipeline_run where job = 'snds:main' and status = 'running'`)) === 1);
    victim.child.kill('SIGKILL');
    await victim.exited;
    expect(await t.count(`select count(*)::int as n from repwatch.pipeline_run where job = 'snds:main' and status = 'succeeded'`)).toBe(0);
    snds!.release();
    const rerun = t.start('run', '--job', 'snds', '--format', 'json');
    expect((await rerun.exited).code, rerun.stderr()).toBe(0);
    const rows = await t.q<{ status: string; detail: string | null }>(`select status, detail from repwatch.pipeline_run where job = 'snds:main' order by id`);
    expect(rows.map((r) => r.status)).toEqual(['failed', 'succeeded', 'succeeded', 'succeeded']);
    expect(rows[0]!.detail).toMatch(/^abandoned/);
    const { days } = await t.expectedSndsDays();
    expect(await t.count(`select count(*)::int as n from repwatch.snds_row`)).toBe(days.length * IPS.length);
    // Once more: nothing is due, nothing is loaded again.
    const again = t.start('run', '--job', 'snds', '--format', 'json');
    expect((await again.exited).code).toBe(0);
    expect(JSON.parse(again.stdout()).outcomes).toEqual([]);
    expect(await t.count(`select count(*)::int as n from repwatch.snds_row`)).toBe(days.length * IPS.length);
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

  it('Ctrl-C while a one-off command reads its input exits 130 saying what it means, and nothing of the unfinished input loads', async () => {
    handle = await postgres.create();
    const dir = tempDir();
    // Reading an export from stdin that never ends: the command is busy when the signal comes. It
    // spools stdin to a file under TMPDIR first: once our line is there, it is reading.
    const ingest = spawnRepwatch(['ingest', 'snds', '--file', '-', '--feed', 'manual'], { DATABASE_URL: handle.url!, REPWATCH_HOME: dir, TMPDIR: dir }, { stdin: 'pipe' });
    children.push(ingest);
    const line = '192.0.2.1,11/20/2026 12:00 AM,11/20/2026 11:59 PM,1,1,1,GREEN,< 0.1%,,,0,,,\r\n';
    ingest.child.stdin!.write(line);
    await waitFor('stdin spooled', async () => {
      const spool = readdirSync(dir).find((name) => name.startsWith('repwatch-stdin-'));
      const file = spool ? join(dir, spool, 'stdin') : null;
      return file !== null && existsSync(file) && statSync(file).size === line.length;
    });
    ingest.child.kill('SIGINT');
    const exit = await ingest.exited;
    expect(exit.code, ingest.stderr()).toBe(130);
    expect(ingest.stderr()).toContain('repwatch: interrupted (SIGINT). The database rolls back the transaction in progress; what was committed before stays');
    const database = handle.database;
    expect((await database.query<{ n: number }>('select count(*)::int as n from repwatch.snds_row'))[0]!.n).toBe(0);
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

  /**
   * Start `args`, wait until its SNDS job is held mid-download, send SIGTERM, and wait for the exit (15 s
   * at most: a hang guard, not a speed target; the process gives the job 7 s, then exits by itself).
   * The run must be marked interrupted, not left running.
   */
  async function sigtermWhileJobHeld(t: Awaited<ReturnType<typeof setup>>, args: string[], code: number): Promise<Child> {
    snds!.hold();
    const child = t.start(...args);
    await snds!.held();
    await waitFor('the running row', async () => (await t.count(`select count(*)::int as n from repwatch.pipeline_run where job = 'snds:main' and status = 'running'`)) === 1);
    child.child.kill('SIGTERM');
    const exit = await Promise.race([child.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    expect(exit, `still running 15 s after SIGTERM\n${child.stderr()}`).toEqual({ code, signal: null });
    const rows = await t.q<{ status: string; detail: string | null }>(`select status, detail from repwatch.pipeline_run where job = 'snds:main' order by id`);
    expect(rows).toEqual([{ status: 'failed', detail: INTERRUPTED }]);
    return child;
  }

  it('SIGTERM while a job cannot finish: the run is marked interrupted, the process exits 0, and the next run does it', async () => {
    const t = await setup(5);
    const scheduler = await sigtermWhileJobHeld(t, ['schedule'], 0);
    expect(logLines(scheduler.stderr()).some((l) => String(l.msg).startsWith('exiting with a job in hand'))).toBe(true);

    snds!.release();
    const rerun = t.start('run', '--job', 'snds');
    expect((await rerun.exited).code, rerun.stderr()).toBe(0);
    const after = await t.q<{ status: string }>(`select status from repwatch.pipeline_run where job = 'snds:main' order by id`);
    expect(after.map((r) => r.status)).toEqual(['failed', 'succeeded', 'succeeded', 'succeeded']);
    const { days } = await t.expectedSndsDays();
    expect(await t.count(`select count(*)::int as n from repwatch.snds_row`)).toBe(days.length * IPS.length);
  });

  it('SIGTERM to `run` while its job cannot finish: marked interrupted (not left running), exit 1, and the next run does it', async () => {
    const t = await setup(5);
    const run = await sigtermWhileJobHeld(t, ['run', '--job', 'snds'], 1);
    expect(logLines(run.stderr()).some((l) => String(l.msg).startsWith('received SIGTERM: starting no further job'))).toBe(true);

    snds!.release();
    const rerun = t.start('run', '--job', 'snds');
    expect((await rerun.exited).code, rerun.stderr()).toBe(0);
    expect((await t.q<{ status: string }>(`select status from repwatch.pipeline_run where job = 'snds:main' order by id`)).map((r) => r.status)).toContain('succeeded');
  });

  it('schedule --http-port: /livez, /healthz and /metrics, scraped and parsed; status exits 1 for an expired link', async () => {
    const t = await setup(60, { expiredFeed: true });
    // No --http-host: the endpoints have no authentication, so by default they listen on loopback only.
    const scheduler = t.start('schedule', '--http-port', '0');
    const serving = await waitFor('the HTTP port in the log', async () => logLines(scheduler.stderr()).find((l) => l.msg === 'serving /healthz, /livez and /metrics'));
    expect(serving.host).toBe('127.0.0.1');
    const port = serving.port as number;
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
    expect(sampleValue(samples, 'repwatch_snds_link_days_left', { feed: 'main' })).toBe(20);
    expect(sampleValue(samples, 'repwatch_snds_link_days_left', { feed: 'old' })).toBe(-10);
    await waitFor('the SNDS catch-up to succeed', async () => (await t.count(`select count(*)::int as n from repwatch.pipeline_run where job = 'snds:main' and status = 'succeeded'`)) === 3);
    const { periods, days } = await t.expectedSndsDays();
    await waitFor('the expired feed to fail', async () => (await t.count(`select count(*)::int as n from repwatch.pipeline_run where job = 'snds:old' and status = 'failed'`)) >= 1);
    const again = parsePrometheusText(await (await fetch(`${base}/metrics`)).text()).samples;
    // The counter adds up what the runs reported to the ledger (a re-fetched identical export loads nothing).
    const [loaded] = await t.q<{ n: number }>(`select sum(rows_loaded)::int as n from repwatch.pipeline_run where job = 'snds:main' and status = 'succeeded'`);
    expect(sampleValue(again, 'repwatch_rows_loaded_total', { job: 'snds:main' })).toBe(loaded!.n);
    expect(loaded!.n).toBeGreaterThanOrEqual(days.length * IPS.length);
    expect(await t.count(`select count(*)::int as n from repwatch.snds_row`)).toBe(days.length * IPS.length);
    expect(sampleValue(again, 'repwatch_job_runs_total', { job: 'snds:old', status: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(again, 'repwatch_job_last_failure_timestamp_seconds', { job: 'snds:old' })).toBeGreaterThan(0);
    const lastDataDay = days.at(-1)!;
    const daysWithoutData = Math.max(0, daysBetween(lastDataDay, addDays(today, -1)));
    expect(lastDataDay).toBe(addDays(periods.at(-1)!, -1));
    expect(sampleValue(again, 'repwatch_snds_days_without_data', { feed: 'main' })).toBe(daysWithoutData);
    expect(sampleValue(samples, 'repwatch_job_stale', { job: 'jmrp:complaints' })).toBe(0);

    const status = t.start('status', '--format', 'json');
    const statusExit = await status.exited;
    const report = JSON.parse(status.stdout()) as { ok: boolean; problems: string[]; feeds: { feed: string; expiresOn: string; daysLeft: number }[]; jobs: { job: string; state: string }[]; schedulers: { alive: boolean }[] };
    expect(statusExit.code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.feeds).toEqual([
      expect.objectContaining({ feed: 'main', expiresOn: addDays(today, 20), daysLeft: 20, lastDataDay, daysWithoutData }),
      expect.objectContaining({ feed: 'old', expiresOn: addDays(today, -10), daysLeft: -10 }),
    ]);
    expect(report.problems.join('\n')).toMatch(/SNDS feed old: the automated-access link expired on/);
    const [oldRun] = await t.q<{ detail: string }>(`select detail from repwatch.pipeline_run where job = 'snds:old' and status = 'failed' limit 1`);
    expect(oldRun!.detail).toMatch(/expired on .*Automated Data Access page/);
    expect(oldRun!.detail).not.toContain(KEY);
    expect(report.jobs.find((j) => j.job === 'jmrp:complaints')?.state).not.toBe('stale');
    expect(report.schedulers).toEqual([expect.objectContaining({ alive: true })]);

    scheduler.child.kill('SIGTERM');
    expect(await scheduler.exited).toEqual({ code: 0, signal: null });
  });
});
