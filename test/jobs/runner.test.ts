import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { backends, describeEachBackend } from '../support/backends.js';
import { openDatabase } from '../../db/connection.js';
import { runDuePeriods, runJobPeriod } from '../../jobs/runner.js';
import { duePeriods } from '../../jobs/due.js';
import { jobLockKey } from '../../jobs/job-lock.js';
import { ABANDONED, LOCK_LOST } from '../../jobs/ledger.js';
import { registerSecret } from '../../lib/redact.js';
import { dailyJob, drainJob, gate, movableClock, testEnv, DAY } from './fake-jobs.js';

type Row = { period: string; status: string; detail: string | null; rows_loaded: number | null; started_at: Date; finished_at: Date | null };

describeEachBackend('job runner: ledger, catch-up, backoff, locks', (db, backend) => {
  const ledger = (job: string) =>
    db().query<Row>('select period, status, detail, rows_loaded, started_at, finished_at from repwatch.pipeline_run where job = $1 order by id', [job]);

  it('runs a due period once, records it, and does not run it again', async () => {
    const ran: string[] = [];
    const job = dailyJob('t:once', async (c) => {
      ran.push(c.period);
      return { rowsIn: 3, rowsLoaded: 2, rowsRejected: 1, detail: 'ok' };
    });
    const clock = movableClock('2026-11-28T07:00:00Z');
    await db().query(`insert into repwatch.pipeline_run (job, period, status, started_at, finished_at) values ('t:once', '2026-11-26', 'succeeded', $1, $1), ('t:once', '2026-11-27', 'succeeded', $1, $1)`, [
      new Date('2026-11-27T06:16:00Z'),
    ]);
    const first = await runDuePeriods(job, testEnv(db(), clock), { recordSkip: true });
    expect(first.map((o) => [o.period, o.status])).toEqual([['2026-11-28', 'succeeded']]);
    expect(ran).toEqual(['2026-11-28']);
    const second = await runDuePeriods(job, testEnv(db(), clock), { recordSkip: true });
    expect(second).toEqual([]);
    const rows = await ledger('t:once');
    expect(rows.at(-1)).toMatchObject({ period: '2026-11-28', status: 'succeeded', rows_loaded: 2, detail: 'ok' });
    // Times come from the injected clock, on the same time line as the due computation.
    expect(rows.at(-1)!.started_at.toISOString()).toBe('2026-11-28T07:00:00.000Z');
    // The BI view shows the ledger with its fixed columns.
    const view = await db().query(`select * from analytics.pipeline_run where job = 't:once' and period = '2026-11-28'`);
    expect(Object.keys(view[0]!).sort()).toEqual(['detail', 'finished_at', 'job', 'period', 'rows_in', 'rows_loaded', 'rows_rejected', 'started_at', 'status']);
  });

  it('a tick fired by a host clock ahead of the database\'s waits for the database to reach it, then runs its period', async () => {
    const job = dailyJob('t:ahead', async () => ({}));
    for (const day of ['2026-11-25', '2026-11-26', '2026-11-27']) {
      await db().query(`insert into repwatch.pipeline_run (job, period, status, started_at, finished_at) values ('t:ahead', $1, 'succeeded', $2, $2)`, [day, new Date(`${day}T06:16:00Z`)]);
    }
    // The database's clock: 1.5 s before the 06:15 tick, running in real time.
    const started = Date.now();
    const databaseClock = { now: () => new Date(Date.parse('2026-11-28T06:14:58.500Z') + (Date.now() - started)) };
    const tick = new Date('2026-11-28T06:15:00Z');
    expect(await runDuePeriods(job, testEnv(db(), databaseClock), { recordSkip: true })).toEqual([]);
    const outcomes = await runDuePeriods(job, testEnv(db(), databaseClock), { recordSkip: true, notBefore: tick });
    expect(outcomes.map((o) => [o.period, o.status])).toEqual([['2026-11-28', 'succeeded']]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('catches up the periods missed within the horizon after a gap, oldest first, and no older ones', async () => {
    const ran: string[] = [];
    const job = dailyJob('t:gap', async (c) => {
      ran.push(c.period);
      return {};
    });
    // Last success a week ago; the scheduler was down since.
    await db().query(`insert into repwatch.pipeline_run (job, period, status, started_at, finished_at) values ('t:gap', '2026-11-21', 'succeeded', $1, $1)`, [new Date('2026-11-21T06:20:00Z')]);
    const outcomes = await runDuePeriods(job, testEnv(db(), movableClock('2026-11-28T10:00:00Z')), { recordSkip: true });
    expect(outcomes.every((o) => o.status === 'succeeded')).toBe(true);
    expect(ran).toEqual(['2026-11-26', '2026-11-27', '2026-11-28']);
  });

  it('records a failure with its redacted error, waits for the backoff, then retries and succeeds', async () => {
    const secret = 'k3y-SECRET-abcdef123456';
    registerSecret(secret);
    let fail = true;
    const job = dailyJob(
      't:retry',
      async () => {
        if (fail) throw new Error(`GET https://snds.example/data?key=${secret} failed: 503`);
        return { rowsLoaded: 5 };
      },
      0.5,
    );
    const clock = movableClock('2026-11-28T07:00:00Z');
    const env = testEnv(db(), clock);
    expect((await runDuePeriods(job, env, { recordSkip: true })).map((o) => o.status)).toEqual(['failed']);
    clock.advance(30_000);
    const waiting = await runDuePeriods(job, env, { recordSkip: true });
    expect(waiting).toMatchObject([{ status: 'deferred', failures: 1, retryAt: new Date('2026-11-28T07:01:00Z') }]);
    clock.advance(31_000);
    expect((await runDuePeriods(job, env, { recordSkip: true })).map((o) => o.status)).toEqual(['failed']);
    // Two failures: the next wait is twice as long.
    const due = await duePeriods(db(), job, clock.now(), env.retry);
    expect(due[0]!.retryAt?.toISOString()).toBe('2026-11-28T07:03:01.000Z');
    fail = false;
    clock.advance(2 * 60_000 + 1_000);
    expect((await runDuePeriods(job, env, { recordSkip: true })).map((o) => o.status)).toEqual(['succeeded']);
    const rows = await ledger('t:retry');
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed', 'succeeded']);
    expect(rows[0]!.detail).toContain('failed: 503');
    expect(rows.map((r) => r.detail ?? '').join(' ')).not.toContain(secret);
  });

  it('a mailbox-style job runs only its latest tick, and backs off across ticks after failures', async () => {
    const ran: string[] = [];
    const job = drainJob('t:drain', async (c) => {
      ran.push(c.period);
      throw new Error('IMAP server unreachable');
    });
    const clock = movableClock('2026-11-28T06:12:00Z');
    const env = testEnv(db(), clock);
    await runDuePeriods(job, env, { recordSkip: true });
    expect(ran).toEqual(['2026-11-28T06:10Z']);
    clock.set('2026-11-28T06:20:30Z');
    await runDuePeriods(job, env, { recordSkip: true });
    expect(ran).toEqual(['2026-11-28T06:10Z', '2026-11-28T06:20Z']);
    // Two failures in a row: 2 minutes' wait, even though a new tick came.
    clock.set('2026-11-28T06:21:30Z');
    expect((await runDuePeriods(job, env, { recordSkip: true }))[0]).toMatchObject({ status: 'deferred', failures: 2 });
  });

  it('does not start a job twice in one process: the second call is skipped', async () => {
    const g = gate();
    const started = gate();
    const job = dailyJob('t:busy', async () => {
      started.open();
      await g.promise;
      return {};
    });
    const env = testEnv(db());
    const first = runJobPeriod(job, '2026-11-28', env, { recordSkip: true });
    await started.promise;
    const second = await runJobPeriod(job, '2026-11-28', env, { recordSkip: true });
    expect(second).toMatchObject({ status: 'skipped', reason: 't:busy is already running in this process' });
    g.open();
    expect((await first).status).toBe('succeeded');
  });

  it.skipIf(backend.name !== 'postgres')('skips, and records it, when another session holds the job’s advisory lock (PostgreSQL only: PGlite is one session)', async () => {
    const ran: string[] = [];
    const job = dailyJob('t:locked', async (c) => {
      ran.push(c.period);
      return {};
    });
    const holding = gate();
    const release = gate();
    const holder = db().withSession(async (session) => {
      await session.query('select pg_advisory_lock($1, $2)', jobLockKey('t:locked'));
      holding.open();
      await release.promise;
      await session.query('select pg_advisory_unlock($1, $2)', jobLockKey('t:locked'));
    });
    await holding.promise;
    const outcome = await runJobPeriod(job, '2026-11-28', testEnv(db()), { recordSkip: true });
    expect(outcome).toMatchObject({ status: 'skipped', reason: 't:locked is already running in another process' });
    expect(ran).toEqual([]);
    expect((await ledger('t:locked')).map((r) => r.status)).toEqual(['skipped']);
    release.open();
    await holder;
    expect((await runJobPeriod(job, '2026-11-28', testEnv(db()), { recordSkip: true })).status).toBe('succeeded');
  });

  it.skipIf(backend.name !== 'postgres')('a job whose lock connection is lost stops, and the ledger says why; the period runs again (PostgreSQL only)', async () => {
    const { job, state } = jobWaitingForItsStop('t:lost-lock');
    const env = testEnv(db(), undefined, { lockCheck: { everyMs: 50, answerWithinMs: 10_000 } });
    const running = runJobPeriod(job, '2026-11-28', env, { recordSkip: true });
    await state.started.promise;
    // What a database restart or a network cut does to the idle session that holds the lock.
    const [classid, objid] = jobLockKey('t:lost-lock');
    const killed = await db().query<{ ok: boolean }>(
      `select pg_terminate_backend(pid) as ok from pg_locks
       where locktype = 'advisory' and classid = $1::bigint::oid and objid = $2::bigint::oid and objsubid = 2 and granted`,
      [classid, objid >>> 0],
    );
    expect(killed).toEqual([{ ok: true }]);
    const outcome = await running;
    expect(state.stoppedBySignal).toBe(true);
    expect(outcome).toMatchObject({ status: 'failed', error: LOCK_LOST });
    expect((await ledger('t:lost-lock')).map((r) => [r.status, r.detail])).toEqual([['failed', LOCK_LOST]]);
    state.wait = false;
    expect((await runJobPeriod(job, '2026-11-28', env, { recordSkip: true })).status).toBe('succeeded');
  });

  it('closes a run left "running" by a dead process, runs the period again, and does not count it for backoff', async () => {
    await db().query(`insert into repwatch.pipeline_run (job, period, status, started_at, instance) values ('t:dead', '2026-11-28', 'running', $1, 'gone:42')`, [
      new Date('2026-11-28T06:15:00Z'),
    ]);
    const job = dailyJob('t:dead', async () => ({ rowsLoaded: 1 }), 0.5);
    const outcome = await runDuePeriods(job, testEnv(db(), movableClock('2026-11-28T06:16:00Z')), { recordSkip: true });
    expect(outcome.map((o) => o.status)).toEqual(['succeeded']);
    const rows = await ledger('t:dead');
    expect(rows.map((r) => [r.status, r.detail])).toEqual([
      ['failed', ABANDONED],
      ['succeeded', null],
    ]);
  });

  it('the database forbids a second success for one (job, period)', async () => {
    const insert = () => db().query(`insert into repwatch.pipeline_run (job, period, status) values ('t:unique', '2026-11-28', 'succeeded')`);
    await insert();
    await expect(insert()).rejects.toThrow(/duplicate key|unique/);
  });

  it('the time comes from the database when no clock is injected', async () => {
    const { systemClock } = await import('../../lib/clock.js');
    const env = testEnv(db(), systemClock);
    expect(env.time.fromDatabase).toBe(true);
    const [row] = await db().query<{ now: Date }>('select now() as now');
    expect(Math.abs((await env.time.now()).getTime() - row!.now.getTime())).toBeLessThan(DAY);
  });
});

/**
 * A lock connection that stops answering (a network cut without a reset, a frozen server) rather than
 * one that is closed: a TCP proxy between the pool and PostgreSQL stops passing the bytes of the
 * session that holds the lock. PostgreSQL only: the lock is a server session.
 */
describe.skipIf(!backends()[0]!.available)('job runner: a lock connection that stops answering [postgres]', () => {
  it('the job is stopped, the ledger says why, the connection is discarded and the job can run again in this process', async () => {
    const handle = await backends()[0]!.create();
    const target = new URL(handle.url!);
    const pairs: { client: Socket; upstream: Socket }[] = [];
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      pairs.push({ client, upstream });
      client.pipe(upstream);
      upstream.pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    const proxied = new URL(handle.url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String((proxy.address() as AddressInfo).port);
    const database = await openDatabase({ url: proxied.toString(), poolSize: 4 });
    try {
      const { job, state } = jobWaitingForItsStop('t:frozen-lock');
      const env = testEnv(database, undefined, { lockCheck: { everyMs: 50, answerWithinMs: 400 } });
      const running = runJobPeriod(job, '2026-11-28', env, { recordSkip: true });
      await state.started.promise;
      // Freeze the proxied connection of the backend that holds the job's lock (its client port is the
      // proxy's local port towards PostgreSQL).
      const [classid, objid] = jobLockKey('t:frozen-lock');
      const [holder] = await handle.database.query<{ port: number }>(
        `select a.client_port as port from pg_locks l join pg_stat_activity a on a.pid = l.pid
         where l.locktype = 'advisory' and l.classid = $1::bigint::oid and l.objid = $2::bigint::oid and l.objsubid = 2 and l.granted`,
        [classid, objid >>> 0],
      );
      const frozen = pairs.find((p) => p.upstream.localPort === holder!.port)!;
      expect(frozen, 'the lock session goes through the proxy').toBeDefined();
      frozen.client.unpipe(frozen.upstream);
      frozen.upstream.unpipe(frozen.client);
      frozen.client.pause();
      frozen.upstream.pause();

      const outcome = await running;
      expect(state.stoppedBySignal).toBe(true);
      expect(outcome).toMatchObject({ status: 'failed', error: LOCK_LOST });
      const rows = await handle.database.query<{ status: string; detail: string }>(`select status, detail from repwatch.pipeline_run where job = 't:frozen-lock' order by id`);
      expect(rows).toEqual([{ status: 'failed', detail: LOCK_LOST }]);
      // Not "already running in this process": the job's name was released with the discarded session.
      // The frozen session still holds the lock on the server, so the next run cannot take it yet.
      state.wait = false;
      expect(await runJobPeriod(job, '2026-11-28', env, { recordSkip: false })).toMatchObject({ status: 'skipped', reason: 't:frozen-lock is already running in another process' });
      frozen.client.destroy();
      frozen.upstream.destroy();
      await waitUntil(async () => (await runJobPeriod(job, '2026-11-28', env, { recordSkip: false })).status === 'succeeded');
    } finally {
      await database.close().catch(() => undefined);
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      proxy.close();
      await handle.drop();
    }
  });
});

async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A job that, until `state.wait` is set false, waits (at most 30 s) for its stop signal and notes that it came. */
function jobWaitingForItsStop(name: string) {
  const state = { started: gate(), stoppedBySignal: false, wait: true };
  const job = dailyJob(name, async (c) => {
    if (!state.wait) return { rowsLoaded: 1 };
    state.started.open();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 30_000);
      c.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        state.stoppedBySignal = true;
        resolve();
      });
    });
    throw new Error('stopped as asked');
  });
  return { job, state };
}
