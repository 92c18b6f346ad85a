import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachBackend } from '../support/backends.js';
import { collectStatus } from '../../jobs/status.js';
import { mailboxBacklogOf, sndsLinkStates } from '../../jobs/definitions.js';
import { configSchema } from '../../config/schema.js';
import { dailyJob, drainJob } from './fake-jobs.js';

describeEachBackend('status: staleness, links, days without data, backlog', (db) => {
  const insertRun = (job: string, period: string, status: string, at: string, detail: string | null = null) =>
    db().query(`insert into repwatch.pipeline_run (job, period, status, started_at, finished_at, detail) values ($1, $2, $3, $4, $4, $5)`, [job, period, status, new Date(at), detail]);

  it('a job is stale when the period of its latest tick older than staleAfterMinutes has not succeeded', async () => {
    const config = configSchema.parse({});
    const fresh = dailyJob('st:fresh', async () => ({}));
    const late = dailyJob('st:late', async () => ({}));
    const waiting = dailyJob('st:waiting', async () => ({}));
    await insertRun('st:fresh', '2026-11-28', 'succeeded', '2026-11-28T06:16:00Z');
    await insertRun('st:late', '2026-11-27', 'succeeded', '2026-11-27T06:16:00Z');
    await insertRun('st:late', '2026-11-28', 'failed', '2026-11-28T06:16:00Z', 'HTTP 503 from SNDS');
    await insertRun('st:waiting', '2026-11-27', 'succeeded', '2026-11-27T06:16:00Z');
    // 07:20: the 06:15 tick is over an hour old.
    const report = await collectStatus(db(), config, [fresh, late], new Date('2026-11-28T07:20:00Z'), { linkStates: sndsLinkStates });
    expect(report.jobs.map((j) => [j.job, j.state, j.stale])).toEqual([
      ['st:fresh', 'ok', false],
      ['st:late', 'stale', true],
    ]);
    const lateStatus = report.jobs[1]!;
    expect(lateStatus).toMatchObject({ lastSuccessPeriod: '2026-11-27', lastFailurePeriod: '2026-11-28', lastFailureDetail: 'HTTP 503 from SNDS', expectedPeriod: '2026-11-28', lastFailureAgeSeconds: 64 * 60 });
    expect(lateStatus.nextRunAt?.toISOString()).toBe('2026-11-29T06:15:00.000Z');
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.stringMatching(/^st:late: period 2026-11-28 .* has not succeeded; last failure 2026-11-28: HTTP 503 from SNDS/)]);
    // 06:40: the tick is only 25 minutes old; yesterday's success is enough.
    const early = await collectStatus(db(), config, [waiting], new Date('2026-11-28T06:40:00Z'), { linkStates: sndsLinkStates });
    expect(early.jobs[0]).toMatchObject({ state: 'ok', stale: false, expectedPeriod: '2026-11-27' });
  });

  it('a job that never ran is not late for ticks from before the database existed, and is for every tick after', async () => {
    const at = (await db().query<{ at: Date }>('select min(applied_at) as at from repwatch.schema_migration'))[0]!.at;
    await db().query(`update repwatch.schema_migration set applied_at = '2026-11-28T12:00:00Z' where applied_at = $1`, [at]);
    try {
      const job = dailyJob('st:new-install', async () => ({}));
      const config = configSchema.parse({});
      // Installed at 12:00: the 06:15 tick of that day was nobody's to run.
      const first = await collectStatus(db(), config, [job], new Date('2026-11-28T20:00:00Z'), { linkStates: sndsLinkStates });
      expect(first.jobs[0]).toMatchObject({ state: 'not run yet', stale: false, nextRunAt: new Date('2026-11-29T06:15:00Z') });
      expect(first.ok).toBe(true);
      // The next morning's tick came after the install and nothing ran it.
      const next = await collectStatus(db(), config, [job], new Date('2026-11-29T07:20:00Z'), { linkStates: sndsLinkStates });
      expect(next.jobs[0]).toMatchObject({ state: 'stale', stale: true, expectedPeriod: '2026-11-29' });
      expect(next.problems).toEqual([expect.stringMatching(/^st:new-install: period 2026-11-29 .*the job has never succeeded/)]);
      // A job that has run owes every tick, also one from before the install (a restored database).
      await insertRun('st:new-install', '2026-11-26', 'succeeded', '2026-11-26T06:16:00Z');
      const ran = await collectStatus(db(), config, [job], new Date('2026-11-28T20:00:00Z'), { linkStates: sndsLinkStates });
      expect(ran.jobs[0]).toMatchObject({ state: 'stale', expectedPeriod: '2026-11-28' });
    } finally {
      await db().query(`update repwatch.schema_migration set applied_at = $1 where applied_at = '2026-11-28T12:00:00Z'`, [at]);
    }
  });

  it('a daily job is stale when its expected day failed, even if an older day succeeded after the tick (a catch-up)', async () => {
    const job = dailyJob('st:catchup', async () => ({}));
    await insertRun('st:catchup', '2026-11-26', 'succeeded', '2026-11-28T06:15:10Z');
    await insertRun('st:catchup', '2026-11-27', 'succeeded', '2026-11-28T06:15:20Z');
    await insertRun('st:catchup', '2026-11-28', 'failed', '2026-11-28T06:15:30Z', 'HTTP 500 from SNDS');
    const report = await collectStatus(db(), configSchema.parse({}), [job], new Date('2026-11-28T07:30:00Z'), { linkStates: sndsLinkStates });
    expect(report.jobs[0]).toMatchObject({ state: 'stale', stale: true, expectedPeriod: '2026-11-28', lastSuccessPeriod: '2026-11-27' });
    expect(report.ok).toBe(false);
  });

  it('a mailbox job is not stale when a later drain succeeded', async () => {
    const job = drainJob('st:drain', async () => ({}));
    await insertRun('st:drain', '2026-11-28T05:00Z', 'failed', '2026-11-28T05:00:10Z');
    await insertRun('st:drain', '2026-11-28T07:10Z', 'succeeded', '2026-11-28T07:10:10Z');
    const report = await collectStatus(db(), configSchema.parse({}), [job], new Date('2026-11-28T07:20:00Z'), { linkStates: sndsLinkStates });
    expect(report.jobs[0]).toMatchObject({ stale: false, lastSuccessPeriod: '2026-11-28T07:10Z', expectedPeriod: '2026-11-28T06:20Z' });
  });

  it('SNDS links: expiry date and days left; an expired link is a problem, a link expiring soon a warning; days without data', async () => {
    const config = configSchema.parse({
      snds: {
        feeds: [
          { name: 'old', dataUrl: 'https://snds.example/a', linkCreatedOn: '2026-10-20' },
          { name: 'soon', dataUrl: 'https://snds.example/b', linkCreatedOn: '2026-11-03' },
          { name: 'unknown', dataUrl: 'https://snds.example/c' },
        ],
      },
    });
    await db().query(`insert into repwatch.raw_download (source, kind, feed, location, sha256, byte_size) values ('url', 'ip_data', 'soon', 'x', 'ab', 1) returning id`).then(async ([row]) => {
      const id = (row as { id: number }).id;
      for (const day of ['2026-11-22', '2026-11-24', '2026-11-25']) {
        await db().query(
          `insert into repwatch.snds_row (feed, day, ip, activity_start_raw, download_id, line_no) values ('soon', $1, '1.2.3.4', 'raw', $2, 1)`,
          [day, id],
        );
      }
    });
    const report = await collectStatus(db(), config, [], new Date('2026-11-28T08:00:00Z'), { linkStates: sndsLinkStates });
    expect(report.feeds).toEqual([
      { feed: 'old', expiresOn: '2026-11-19', daysLeft: -9, linkState: 'expired', lastDataDay: null, daysWithoutData: null, missingDays: expect.any(Array), brokenSince: null, brokenDetail: null },
      {
        feed: 'soon',
        expiresOn: '2026-12-03',
        daysLeft: 5,
        linkState: 'warn',
        lastDataDay: '2026-11-25',
        daysWithoutData: 2,
        missingDays: ['2026-11-21', '2026-11-23', '2026-11-26', '2026-11-27'],
        brokenSince: null,
        brokenDetail: null,
      },
      { feed: 'unknown', expiresOn: null, daysLeft: null, linkState: 'unknown', lastDataDay: null, daysWithoutData: null, missingDays: expect.any(Array), brokenSince: null, brokenDetail: null },
    ]);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.stringMatching(/SNDS feed old: the automated-access link expired on 2026-11-19/)]);
    expect(report.warnings).toEqual([expect.stringMatching(/SNDS feed soon: the link expires on 2026-12-03 \(5 days left\)/)]);
  });

  it('a link whose latest download answered like a broken one is a problem before its expiry date, until a download loads again', async () => {
    const config = configSchema.parse({ snds: { feeds: [{ name: 'cut', dataUrl: 'https://snds.example/cut', linkCreatedOn: '2026-11-20' }] } });
    const download = (outcome: string, at: string, detail: string | null) =>
      db().query(`insert into repwatch.raw_download (source, kind, feed, location, sha256, byte_size, outcome, fetched_at, detail) values ('url', 'ip_data', 'cut', 'x', md5(random()::text), 1, $1, $2, $3)`, [outcome, new Date(at), detail]);
    await download('loaded', '2026-11-26T06:00:00Z', null);
    await download('link_broken', '2026-11-27T06:00:00Z', 'HTTP 403');
    const broken = await collectStatus(db(), config, [], new Date('2026-11-28T08:00:00Z'), { linkStates: sndsLinkStates });
    expect(broken.feeds[0]).toMatchObject({ feed: 'cut', linkState: 'broken', daysLeft: 22, brokenDetail: 'HTTP 403' });
    expect(broken.ok).toBe(false);
    expect(broken.problems).toEqual([expect.stringMatching(/SNDS feed cut: its link answered like a broken link on 2026-11-27T06:00:00.000Z \(HTTP 403\); refresh/)]);
    await download('loaded', '2026-11-28T06:00:00Z', null);
    const fixed = await collectStatus(db(), config, [], new Date('2026-11-28T08:00:00Z'), { linkStates: sndsLinkStates });
    expect(fixed.feeds[0]).toMatchObject({ linkState: 'ok', brokenSince: null });
    expect(fixed.ok).toBe(true);
  });

  it('mailboxes: a Maildir backlog is counted, an mbox has none', async () => {
    const maildir = mkdtempSync(join(tmpdir(), 'repwatch-maildir-'));
    for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(maildir, sub));
    writeFileSync(join(maildir, 'new', '1.eml'), 'Subject: a\n\nx\n');
    writeFileSync(join(maildir, 'new', '2.eml'), 'Subject: b\n\nx\n');
    const config = configSchema.parse({
      jmrp: { mailboxes: [{ name: 'md', maildir }, { name: 'box', mbox: join(maildir, 'none.mbox') }] },
    });
    const report = await collectStatus(db(), config, [], new Date('2026-11-28T08:00:00Z'), { linkStates: sndsLinkStates, backlog: mailboxBacklogOf });
    expect(report.mailboxes).toEqual([
      { mailbox: 'md', stream: 'jmrp', kind: 'maildir', backlog: 2, lastMessageAt: null },
      { mailbox: 'box', stream: 'jmrp', kind: 'mbox', backlog: null, lastMessageAt: null },
    ]);
  });

  it('warns about days a stopped run left waiting for a recompute, not about those of a run in progress', async () => {
    await db().query('truncate repwatch.recompute_pending');
    const now = new Date('2026-11-28T08:00:00Z');
    await db().query(`insert into repwatch.recompute_pending (day, noted_at) values ('2026-11-20', $1), ('2026-11-21', $2)`, [new Date('2026-11-28T07:55:00Z'), new Date('2026-11-28T07:58:00Z')]);
    const recent = await collectStatus(db(), configSchema.parse({}), [], now, { linkStates: sndsLinkStates });
    expect(recent.pendingRecompute).toEqual({ days: 2, oldest: new Date('2026-11-28T07:55:00Z') });
    expect(recent.warnings).toEqual([]);
    expect(recent.ok).toBe(true);
    await db().query(`update repwatch.recompute_pending set noted_at = $1 where day = '2026-11-20'`, [new Date('2026-11-28T07:30:00Z')]);
    const stopped = await collectStatus(db(), configSchema.parse({}), [], now, { linkStates: sndsLinkStates });
    expect(stopped.warnings).toEqual([expect.stringMatching(/^2 day\(s\) of data wait for a recompute since 2026-11-28T07:30:00.000Z .*repwatch transform --pending/)]);
    await db().query('truncate repwatch.recompute_pending');
  });
});
