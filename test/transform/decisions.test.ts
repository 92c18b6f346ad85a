import { beforeEach, expect, it } from 'vitest';
import { describeEachBackend } from '../support/backends.js';
import { configSchema, type Config } from '../../config/schema.js';
import { blockedByStatusAsOf, computeDecisions, configuredSndsFeeds, coverageForFeeds, feedGapText, loadDecisions, sndsWindowCoverage, toFlagRecord, latestSndsDay } from '../../transform/decisions.js';
import { notePendingDays, pendingDays, rebuildAll, recompute, recomputeDays } from '../../transform/recompute.js';
import { Fixture, clearTables } from './fixture.js';
import { AS_OF, EXPECTED_FLAGS, seedDataset } from './dataset.js';

const config: Config = configSchema.parse({ pools: { dedicated: ['198.51.100.0/29', '198.51.100.7'], other: ['203.0.113.0/24'] } });

describeEachBackend('decisions', (db) => {
  let fx: Fixture;
  beforeEach(async () => {
    await clearTables(db());
    fx = new Fixture(db());
  });

  it('decides one IP per status and reason on the constructed dataset, and stores them by as-of date', async () => {
    await seedDataset(fx);
    await rebuildAll(db(), config);
    const decisions = await computeDecisions(db(), config, AS_OF);
    expect(decisions.map(toFlagRecord)).toEqual(EXPECTED_FLAGS);
    // 198.51.100.17 had data 28 days before D: outside the population.
    expect(decisions.find((d) => d.ip === '198.51.100.17')).toBeUndefined();
    expect(decisions.find((d) => d.ip === '198.51.100.10')!.routes).toEqual(['office365_portal', 'delist_email']);
    expect((await loadDecisions(db(), AS_OF)).map(toFlagRecord)).toEqual(EXPECTED_FLAGS);

    const stored = await db().query<{ ip: string; status: string; reasons: string[]; complaint_rate_7d: number | null; blocked: boolean; route: string | null }>(
      `select host(ip) as ip, status, reasons, complaint_rate_7d, blocked, route from analytics.ip_flag where as_of = $1 order by ip`,
      [AS_OF],
    );
    expect(stored).toHaveLength(EXPECTED_FLAGS.length);
    expect(stored.find((r) => r.ip === '198.51.100.8')).toEqual({ ip: '198.51.100.8', status: 'fix_first', reasons: ['complaint_rate'], complaint_rate_7d: 0.003, blocked: true, route: 'outlook_form' });
    expect(stored.find((r) => r.ip === '198.51.100.15')!.complaint_rate_7d).toBeNull();
    // The rebuild stored every as-of date that has data, so the history is there for BI.
    const dates = await db().query<{ n: number }>(`select count(distinct as_of) as n from repwatch.ip_flag`);
    // D-28 … D, and D+1: the day of the IP Status list downloaded after D, as `flags` decides by default.
    expect(dates[0]!.n).toBe(30);
    expect(await latestSndsDay(db(), AS_OF)).toBe(AS_OF);
    // Never a day after the one given (today): a row dated in the future does not move the default.
    expect(await latestSndsDay(db(), '2026-11-19')).toBe('2026-11-19');
  });

  it('sums facts per IP and day: rows of a feed added, worst colour, highest band, one feed when two report the IP', async () => {
    const ip = '203.0.113.5';
    await fx.snds({ ip, day: AS_OF, recipients: 100, filter: 'GREEN', band: '< 0.1%', rateLow: 0, rateHigh: 0.001, traps: null });
    await fx.snds({ ip, day: AS_OF, recipients: 250, filter: 'YELLOW', band: '1% - < 2%', rateLow: 0.01, rateHigh: 0.02, traps: 3 });
    await fx.snds({ ip, day: AS_OF, recipients: 50, filter: 'RED', band: '0.1% - < 1%', rateLow: 0.001, rateHigh: 0.01, traps: null });
    // The same IP and day seen through a second account, with less traffic: not added.
    await fx.snds({ ip, day: AS_OF, recipients: 399, filter: 'GREEN', feed: 'second' });
    await fx.snds({ ip: '203.0.113.6', day: AS_OF, recipients: 0, traps: null });
    await fx.snds({ ip: '203.0.113.7', day: AS_OF, recipients: null, traps: null, rcpt: 10 });
    await fx.complaint({ ip, day: AS_OF, incidents: 2 });
    await fx.complaint({ ip, day: AS_OF, incidents: 1 });
    await fx.complaint({ ip, day: AS_OF, incidents: 40, isComplaint: false });
    await fx.complaint({ ip: '203.0.113.6', day: AS_OF, incidents: 1 });
    await fx.complaint({ ip: '203.0.113.9', day: AS_OF, incidents: 1 });
    await fx.status(`${AS_OF}T08:00:00Z`, [['203.0.113.5', '203.0.113.5']]);
    await recomputeDays(db(), config, fx.takeTouched());

    const rows = await db().query(`select host(ip) as ip, message_recipients, rcpt_commands, filter_result, snds_complaint_band, trap_hits, complaints,
                                          complaint_rate, blocked from analytics.ip_day where day = $1 order by ip`, [AS_OF]);
    expect(rows).toEqual([
      { ip, message_recipients: 400, rcpt_commands: 400, filter_result: 'RED', snds_complaint_band: '1% - < 2%', trap_hits: 3, complaints: 3, complaint_rate: 0.0075, blocked: true },
      { ip: '203.0.113.6', message_recipients: 0, rcpt_commands: 0, filter_result: 'GREEN', snds_complaint_band: '< 0.1%', trap_hits: null, complaints: 1, complaint_rate: null, blocked: false },
      { ip: '203.0.113.7', message_recipients: null, rcpt_commands: 10, filter_result: 'GREEN', snds_complaint_band: '< 0.1%', trap_hits: null, complaints: 0, complaint_rate: null, blocked: false },
      { ip: '203.0.113.9', message_recipients: null, rcpt_commands: null, filter_result: null, snds_complaint_band: null, trap_hits: null, complaints: 1, complaint_rate: null, blocked: false },
    ]);
    const [decision] = (await computeDecisions(db(), config, AS_OF)).filter((d) => d.ip === ip);
    // A day with a RED row and a YELLOW row counts as a RED day and as a YELLOW day.
    expect(decision).toMatchObject({ redDays7d: 1, yellowDays7d: 1, recipients7d: 400, complaints7d: 3, status: 'fix_first' });
  });

  it('counts the first and the last day of the window and nothing outside it', async () => {
    const ip = '203.0.113.20';
    await fx.snds({ ip, day: '2026-11-13', recipients: 1000, traps: 9, filter: 'RED' }); // the day before W
    await fx.complaint({ ip, day: '2026-11-13', incidents: 100 });
    await fx.snds({ ip, day: '2026-11-14', recipients: 1000, filter: 'YELLOW' }); // first day of W
    await fx.snds({ ip, day: '2026-11-20', recipients: 2000 }); // last day of W = D
    await fx.complaint({ ip, day: '2026-11-20', incidents: 2 });
    await fx.snds({ ip, day: '2026-11-21', recipients: 5000, filter: 'RED', traps: 5 }); // after D
    await fx.complaint({ ip, day: '2026-11-21', incidents: 500 });
    await rebuildAll(db(), config);
    const [decision] = await computeDecisions(db(), config, '2026-11-20');
    expect(toFlagRecord(decision!)).toEqual({
      ip, status: 'at_risk', reasons: ['yellow_filter'], recipients7d: 3000, complaints7d: 2, complaintRate7d: 2 / 3000,
      trapHits7d: 0, redDays7d: 0, yellowDays7d: 1, blocked: false, route: null,
    });
    // windowDays comes from config: with 8 days, the 13th is in.
    const wide = configSchema.parse({ thresholds: { windowDays: 8 } });
    const [wider] = await computeDecisions(db(), wide, '2026-11-20');
    expect(wider).toMatchObject({ recipients7d: 4000, complaints7d: 102, trapHits7d: 9, redDays7d: 1, status: 'at_risk', reasons: ['complaint_rate', 'trap_hits', 'red_filter', 'yellow_filter'] });
  });

  it('applies the thresholds exactly at their values, from config', async () => {
    const rows: [string, number, number][] = [
      ['203.0.113.30', 1000, 1], // = warn
      ['203.0.113.31', 1001, 1], // just under warn
      ['203.0.113.32', 1000, 3], // = max (blocked)
      ['203.0.113.33', 1001, 3], // just under max (blocked)
    ];
    for (const [ip, recipients, complaints] of rows) {
      await fx.snds({ ip, day: AS_OF, recipients });
      await fx.complaint({ ip, day: AS_OF, incidents: complaints });
    }
    await fx.status(`${AS_OF}T00:00:00Z`, [['203.0.113.32', '203.0.113.33']]);
    await rebuildAll(db(), config);
    const byIp = new Map((await computeDecisions(db(), config, AS_OF)).map((d) => [d.ip, d]));
    expect(byIp.get('203.0.113.30')).toMatchObject({ status: 'at_risk', reasons: ['complaint_rate'] });
    expect(byIp.get('203.0.113.31')).toMatchObject({ status: 'ok', reasons: [] });
    expect(byIp.get('203.0.113.32')).toMatchObject({ status: 'fix_first', reasons: ['complaint_rate'] });
    expect(byIp.get('203.0.113.33')).toMatchObject({ status: 'start_delisting', reasons: [] });
    const strict = configSchema.parse({ thresholds: { complaintRateWarn: 0.0005, complaintRateMax: 0.0009 } });
    const strictByIp = new Map((await computeDecisions(db(), strict, AS_OF)).map((d) => [d.ip, d]));
    expect(strictByIp.get('203.0.113.31')).toMatchObject({ status: 'at_risk' });
    expect(strictByIp.get('203.0.113.33')).toMatchObject({ status: 'fix_first' });
  });

  it('blocks an IP anywhere inside an IP Status range, including ranges that span subnets', async () => {
    const ips = ['192.0.2.253', '192.0.2.254', '192.0.2.255', '192.0.3.0', '192.0.3.1', '192.0.3.2', '10.1.1.0', '10.1.1.77', '10.1.1.255', '10.1.2.0',
      '10.1.1.100', '2001:db8::5', '2001:db8::1:0'];
    for (const ip of ips) await fx.snds({ ip, day: AS_OF });
    // Overlapping ranges (10.1.1.90–10.1.1.95 inside the /24) and an IPv6 range: the sweep must cope with both.
    await fx.status(`${AS_OF}T12:00:00Z`, [['192.0.2.254', '192.0.3.1'], ['10.1.1.0', '10.1.1.255'], ['10.1.1.90', '10.1.1.95'], ['2001:db8::', '2001:db8::ff']]);
    // A second feed's latest download counts too; its blocked = false lines do not.
    await fx.status(`${AS_OF}T12:00:00Z`, [['192.0.2.253', '192.0.2.253', false]], { feed: 'second' });
    await rebuildAll(db(), config);
    const blocked = (await computeDecisions(db(), config, AS_OF)).filter((d) => d.blocked).map((d) => d.ip).sort();
    expect(blocked).toEqual(['10.1.1.0', '10.1.1.100', '10.1.1.255', '10.1.1.77', '192.0.2.254', '192.0.2.255', '192.0.3.0', '192.0.3.1', '2001:db8::5']);
  });

  it('reads the IP Status block\'s Details: a Spamhaus or harvesting block is fix_first, the usual text is not', async () => {
    const ips = ['192.0.2.41', '192.0.2.42', '192.0.2.43', '192.0.2.44'];
    for (const ip of ips) await fx.snds({ ip, day: AS_OF });
    await fx.status(`${AS_OF}T06:00:00Z`, [
      ['192.0.2.41', '192.0.2.41', true, 'SpamHaus SBL/XBL'],
      ['192.0.2.42', '192.0.2.42', true, 'E-mail address harvesting'],
      ['192.0.2.43', '192.0.2.43', true, 'Blocked due to user complaints or other evidence of spamming'],
      ['192.0.2.40', '192.0.2.44', true, 'Symantec Brightmail'],
    ]);
    await rebuildAll(db(), config);
    const byIp = new Map((await computeDecisions(db(), config, AS_OF)).map((d) => [d.ip, d]));
    expect(byIp.get('192.0.2.41')).toMatchObject({ status: 'fix_first', reasons: ['dnsbl_listed'], blocked: true, route: 'outlook_form' });
    expect(byIp.get('192.0.2.42')).toMatchObject({ status: 'fix_first', reasons: ['dnsbl_listed', 'address_harvesting'] });
    // .43 is also inside the Brightmail range: both texts are read.
    expect(byIp.get('192.0.2.43')).toMatchObject({ status: 'fix_first', reasons: ['dnsbl_listed'] });
    expect(byIp.get('192.0.2.44')).toMatchObject({ status: 'fix_first', reasons: ['dnsbl_listed'] });
  });

  it('uses the latest IP Status download made on or before D: later ones ignored, failed ones skipped, empty ones unblock', async () => {
    const ip = '203.0.113.40';
    for (const day of ['2026-11-10', '2026-11-12', '2026-11-14', '2026-11-16']) await fx.snds({ ip, day });
    await fx.status('2026-11-10T05:00:00Z', [[ip, ip]]);
    await fx.status('2026-11-12T05:00:00Z', []); // empty export: nothing blocked
    await fx.status('2026-11-14T05:00:00Z', [[ip, ip]]);
    await fx.status('2026-11-15T05:00:00Z', [], { outcome: 'failed' }); // did not load: not the latest
    await fx.status('2026-11-16T00:00:00Z', [], { outcome: 'empty' });
    await rebuildAll(db(), config);
    const blockedOn = async (asOf: string) => (await loadDecisions(db(), asOf))[0]?.blocked;
    expect(await blockedOn('2026-11-10')).toBe(true);
    expect(await blockedOn('2026-11-11')).toBe(true);
    expect(await blockedOn('2026-11-12')).toBe(false);
    expect(await blockedOn('2026-11-14')).toBe(true);
    expect(await blockedOn('2026-11-15')).toBe(true);
    expect(await blockedOn('2026-11-16')).toBe(false);
  });

  it('replaces the stored decisions of a date on recomputation, keeping other dates', async () => {
    await fx.snds({ ip: '203.0.113.50', day: AS_OF });
    await fx.snds({ ip: '203.0.113.51', day: AS_OF });
    await fx.snds({ ip: '203.0.113.52', day: AS_OF });
    await recomputeDays(db(), config, fx.takeTouched());
    // A date after the last day with data, stored because someone asked for it (flags --as-of): kept up to date too.
    expect(await computeDecisions(db(), config, '2026-11-21')).toHaveLength(3);
    await db().query(`delete from repwatch.snds_row where ip = '203.0.113.51'`);
    await fx.snds({ ip: '203.0.113.52', day: AS_OF, traps: 3 });
    await recomputeDays(db(), config, [AS_OF]);
    const stored = await db().query<{ as_of: string; ip: string; status: string; trap_hits_7d: number }>(
      `select as_of, host(ip) as ip, status, trap_hits_7d from repwatch.ip_flag order by as_of, ip`,
    );
    expect(stored).toEqual([
      { as_of: AS_OF, ip: '203.0.113.50', status: 'ok', trap_hits_7d: 0 },
      { as_of: AS_OF, ip: '203.0.113.52', status: 'at_risk', trap_hits_7d: 3 },
      { as_of: '2026-11-21', ip: '203.0.113.50', status: 'ok', trap_hits_7d: 0 },
      { as_of: '2026-11-21', ip: '203.0.113.52', status: 'at_risk', trap_hits_7d: 3 },
    ]);
  });

  it('recomputing incrementally, as ingests do, gives exactly what a full rebuild gives', async () => {
    await seedDataset(fx, 'old');
    await recomputeDays(db(), config, fx.takeTouched());
    await seedDataset(fx, 'new');
    await recomputeDays(db(), config, fx.takeTouched());
    // A re-fetched day replaces that day's rows, then recomputes just that day.
    await db().query(`delete from repwatch.snds_row where day = '2026-11-17' and ip = '198.51.100.1'`);
    await fx.snds({ ip: '198.51.100.1', day: '2026-11-17', recipients: 3, filter: 'YELLOW' });
    await recomputeDays(db(), config, fx.takeTouched());
    await recomputeDays(db(), config, []); // nothing touched: nothing to do

    const snapshot = async () => ({
      facts: await db().query(`select host(ip) as ip, day, message_recipients, filter_result, trap_hits, complaints, has_snds, has_red, has_yellow
                               from repwatch.ip_day_fact order by ip, day`),
      flags: await db().query(`select as_of, host(ip) as ip, status, reasons, recipients_7d, complaints_7d, complaint_rate_7d, trap_hits_7d,
                                      red_days_7d, yellow_days_7d, blocked, route, routes from repwatch.ip_flag order by as_of, ip`),
    });
    const incremental = await snapshot();
    expect(incremental.flags.length).toBeGreaterThan(100);
    const summary = await rebuildAll(db(), config);
    expect(summary.asOfDates[0]).toBe('2026-10-23');
    // The decision frontier: the IP Status list downloaded the day after the last SNDS day.
    expect(summary.asOfDates.at(-1)).toBe('2026-11-21');
    expect(await snapshot()).toEqual(incremental);
    expect((await loadDecisions(db(), AS_OF)).find((d) => d.ip === '198.51.100.1')).toMatchObject({ status: 'at_risk', reasons: ['yellow_filter'], recipients7d: 6003 });
  });

  it('recomputes the days a run left pending when it stopped before its recompute, with the next recompute', async () => {
    const ip = '203.0.113.5';
    // A run commits its rows and notes their day, then dies before recomputing.
    await fx.snds({ ip, day: AS_OF, recipients: 100 });
    fx.takeTouched();
    await db().transaction((session) => notePendingDays(session, [AS_OF, AS_OF]));
    const ipDays = async () => (await db().query<{ n: number }>(`select count(*)::int as n from analytics.ip_day where day = $1`, [AS_OF]))[0]!.n;
    expect(await ipDays()).toBe(0);
    expect((await pendingDays(db())).days).toBe(1);

    // The next recompute, for another day (or none: transform --pending), takes it.
    const other = '2026-01-05';
    const summary = await recompute(db(), config, { days: [other] });
    expect(summary.days).toEqual([other, AS_OF].sort());
    expect(await ipDays()).toBe(1);
    expect(await pendingDays(db())).toEqual({ days: 0, oldest: null });
    expect((await recompute(db(), config, { days: [] })).days).toEqual([]);
  });

  it('a full rebuild decides only the dates with data in the 28 days before them, not every day since a lone old report', async () => {
    await fx.complaint({ ip: '203.0.113.5', day: '2013-04-30', incidents: 1 });
    await fx.snds({ ip: '203.0.113.5', day: AS_OF, recipients: 100 });
    const summary = await rebuildAll(db(), config);
    // 2013-04-30 … 2013-05-27 (28 dates), then AS_OF: not the thirteen years in between.
    expect(summary.asOfDates).toHaveLength(29);
    expect(summary.asOfDates[0]).toBe('2013-04-30');
    expect(summary.asOfDates[27]).toBe('2013-05-27');
    expect(summary.asOfDates[28]).toBe(AS_OF);
  });

  it('decides no date past the latest SNDS day because complaints or bounces for later days arrived first', async () => {
    const ip = '203.0.113.40';
    for (const day of ['2026-11-18', '2026-11-19', '2026-11-20']) await fx.snds({ ip, day, recipients: 1000 });
    // JMRP and bounces arrive the same day; SNDS a day or two later.
    await fx.complaint({ ip, day: '2026-11-21', incidents: 3 });
    await fx.complaint({ ip, day: '2026-11-22', incidents: 2 });
    await db().query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ($1, '2026-11-22', 'block', 'outlook_form', 'bounce')`, [ip]);
    await recomputeDays(db(), config, fx.takeTouched());
    const dates = async () => (await db().query<{ as_of: string }>('select distinct as_of from repwatch.ip_flag order by as_of')).map((r) => r.as_of);
    expect((await dates()).at(-1)).toBe('2026-11-20');
    // The SNDS day arrives: its date is decided, with the complaint in its window.
    await fx.snds({ ip, day: '2026-11-21', recipients: 1000 });
    await recomputeDays(db(), config, fx.takeTouched());
    expect((await dates()).at(-1)).toBe('2026-11-21');
    expect((await loadDecisions(db(), '2026-11-21')).find((d) => d.ip === ip)).toMatchObject({ complaints7d: 3, recipients7d: 4000 });
    // A date asked for explicitly is stored and kept up to date, wherever it lies.
    await computeDecisions(db(), config, '2026-11-22');
    await fx.complaint({ ip, day: '2026-11-22', incidents: 1 });
    await recomputeDays(db(), config, fx.takeTouched());
    expect((await loadDecisions(db(), '2026-11-22')).find((d) => d.ip === ip)).toMatchObject({ complaints7d: 6 });
  });

  it('analytics.decision_coverage says up to which day every SNDS feed has data for each decided date', async () => {
    const [a, b] = ['203.0.113.50', '203.0.113.51'];
    for (const day of ['2026-11-18', '2026-11-19', '2026-11-20']) await fx.snds({ ip: a, day, recipients: 1000, feed: 'main' });
    for (const day of ['2026-11-18', '2026-11-19']) await fx.snds({ ip: b, day, recipients: 1000, feed: 'second' });
    await recomputeDays(db(), config, fx.takeTouched());
    const coverage = await db().query(`select as_of, snds_through, complete from analytics.decision_coverage where as_of >= '2026-11-18' order by as_of`);
    // Feed "second" has not reported 11-20 yet: that date's decisions count b's day as clean.
    expect(coverage).toEqual([
      { as_of: '2026-11-18', snds_through: '2026-11-18', complete: true },
      { as_of: '2026-11-19', snds_through: '2026-11-19', complete: true },
      { as_of: '2026-11-20', snds_through: '2026-11-19', complete: false },
    ]);
  });

  it('window coverage is per feed: a day one feed lacks is missing for its IPs even when another feed has it', async () => {
    const [a, b] = ['203.0.113.52', '203.0.113.53'];
    for (const day of ['2026-11-14', '2026-11-15', '2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20']) {
      await fx.snds({ ip: a, day, recipients: 1000, feed: 'main' });
      if (day !== '2026-11-18') await fx.snds({ ip: b, day, recipients: 1000, feed: 'second' });
    }
    const coverage = await sndsWindowCoverage(db(), AS_OF, 7);
    expect(coverage).toMatchObject({ covered: 6, from: '2026-11-14', latest: AS_OF, feedGaps: [{ feed: 'second', days: ['2026-11-18'] }] });
    expect(feedGapText(coverage.feedGaps)).toBe('feed second has no data for 2026-11-18');
    // Each IP sees the gaps of its own feed.
    expect(coverageForFeeds(coverage, ['main'])).toMatchObject({ covered: 7, feedGaps: [] });
    expect(coverageForFeeds(coverage, ['second'])).toMatchObject({ covered: 6 });
  });

  it('window coverage counts a day a feed answered "no data" as delivered, and with feeds configured expects only those', async () => {
    const [a, b] = ['203.0.113.54', '203.0.113.55'];
    for (const day of ['2026-11-14', '2026-11-15', '2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20']) {
      await fx.snds({ ip: a, day, recipients: 1000, feed: 'main' });
      // "quiet" sends some days only; its other days answered with an empty export.
      if (day <= '2026-11-16') await fx.snds({ ip: b, day, recipients: 200, feed: 'quiet' });
      else await db().query(`insert into repwatch.raw_download (source, kind, feed, location, requested_day, sha256, byte_size, outcome) values ('url', 'ip_data', 'quiet', 'x', $1, 'e', 0, 'empty')`, [day]);
    }
    // An old backfill under its own name, last loaded on the 15th.
    await fx.snds({ ip: b, day: '2026-11-15', recipients: 5, feed: 'backfill' });
    const all = await sndsWindowCoverage(db(), AS_OF, 7);
    // Without the configuration, the old backfill looks like a feed that stopped on the 15th.
    expect(all).toMatchObject({ covered: 2, feedGaps: [{ feed: 'backfill', days: ['2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20'] }] });
    expect(all.latest).toBe('2026-11-15');
    const configured = await sndsWindowCoverage(db(), AS_OF, 7, ['main', 'quiet']);
    expect(configured).toMatchObject({ covered: 7, feedGaps: [], latest: AS_OF });
    expect(configuredSndsFeeds(configSchema.parse({ snds: { feeds: [{ name: 'main' }], api: { clientId: 'x' } } }))).toEqual(['main', 'api']);
    // "main" misses the 19th, which a backfill file (its own feed name, not configured) fills.
    await db().query(`delete from repwatch.snds_feed_day where feed = 'main' and day = '2026-11-19'`);
    expect(await sndsWindowCoverage(db(), AS_OF, 7, ['main', 'quiet'])).toMatchObject({ covered: 6, feedGaps: [{ feed: 'main', days: ['2026-11-19'] }] });
    await fx.snds({ ip: a, day: '2026-11-19', recipients: 900, feed: 'manual' });
    expect(await sndsWindowCoverage(db(), AS_OF, 7, ['main', 'quiet'])).toMatchObject({ covered: 7, feedGaps: [] });
  });

  it('tells the IPs the IP Status lists in force on a date show blocked from those blocked by bounces alone', async () => {
    await fx.status('2026-11-10T06:00:00Z', [['203.0.113.60', '203.0.113.61']]);
    await fx.status('2026-11-15T06:00:00Z', [['203.0.113.61', '203.0.113.61']]);
    await db().query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('203.0.113.62', '2026-11-12', 'block', 'office365_portal', 'bounce')`);
    const ips = ['203.0.113.60', '203.0.113.61', '203.0.113.62'];
    expect([...(await blockedByStatusAsOf(db(), ips, '2026-11-12'))].sort()).toEqual(['203.0.113.60', '203.0.113.61']);
    // The list of the 15th no longer holds .60; a bounce-only block is never on a list.
    expect([...(await blockedByStatusAsOf(db(), ips, '2026-11-20'))]).toEqual(['203.0.113.61']);
  });

  it("rates a pool's day on the complaints of its IP-days with volume only, and still counts every complaint", async () => {
    const [sender, silent] = ['198.51.100.1', '198.51.100.2']; // both in pool "dedicated"
    await fx.snds({ ip: sender, day: AS_OF, recipients: 4000 });
    await fx.complaint({ ip: sender, day: AS_OF, incidents: 2 });
    await fx.complaint({ ip: silent, day: AS_OF, incidents: 5 }); // no SNDS volume: its rate is unknown
    await recomputeDays(db(), config, fx.takeTouched());
    const [pool] = await db().query(`select complaints, message_recipients, complaint_rate from analytics.pool_day where pool = 'dedicated' and day = $1`, [AS_OF]);
    expect(pool).toEqual({ complaints: 7, message_recipients: 4000, complaint_rate: 2 / 4000 });
  });

  it('with no SNDS data at all (JMRP only), decides up to the latest day with complaints', async () => {
    await fx.complaint({ ip: '203.0.113.41', day: '2026-11-21', incidents: 3 });
    await recomputeDays(db(), config, fx.takeTouched());
    expect((await loadDecisions(db(), '2026-11-21')).map((d) => [d.ip, d.status, d.reasons])).toEqual([['203.0.113.41', 'at_risk', ['complaints_without_volume']]]);
  });

  it('decides no date after today when a row is dated in the future (a wrong clock, a damaged export)', async () => {
    const ip = '203.0.113.42';
    const today = new Date().toISOString().slice(0, 10);
    const day = (offset: number) => new Date(Date.parse(`${today}T00:00:00Z`) + offset * 86_400_000).toISOString().slice(0, 10);
    await fx.snds({ ip, day: day(-2), recipients: 1000 });
    await fx.snds({ ip, day: day(5), recipients: 1000 });
    await fx.complaint({ ip, day: day(9), incidents: 1 });
    await recomputeDays(db(), config, fx.takeTouched());
    const dates = (await db().query<{ as_of: string }>('select distinct as_of from repwatch.ip_flag order by as_of')).map((r) => r.as_of);
    expect(dates.at(-1)).toBe(day(-2));
    // With no SNDS data (JMRP only), the latest day with data is capped the same way.
    await clearTables(db());
    await fx.complaint({ ip, day: day(-1), incidents: 1 });
    await fx.complaint({ ip, day: day(3), incidents: 1 });
    await recomputeDays(db(), config, fx.takeTouched());
    const jmrpOnly = (await db().query<{ as_of: string }>('select distinct as_of from repwatch.ip_flag order by as_of')).map((r) => r.as_of);
    expect(jmrpOnly).toEqual([day(-1)]);
  });

  it('stores the same complaint rate as analytics.ip_trend, digit for digit, so BI tools can join on it', async () => {
    // 7 / 3,000 has no exact double: JavaScript's 0.0023333333333333335 is not numeric's 0.00233….
    const ip = '203.0.113.30';
    await fx.snds({ ip, day: AS_OF, recipients: 3000 });
    await fx.complaint({ ip, day: AS_OF, incidents: 7 });
    await recomputeDays(db(), config, fx.takeTouched());
    const rates = await db().query<{ same: boolean; flag: string; trend: string }>(
      `select f.complaint_rate_7d = t.complaint_rate_7d as same, f.complaint_rate_7d::text as flag, t.complaint_rate_7d::text as trend
       from analytics.ip_flag f join analytics.ip_trend t on t.ip = f.ip and t.day = f.as_of
       where f.ip = $1 and f.as_of = $2`,
      [ip, AS_OF],
    );
    expect(rates).toHaveLength(1);
    expect(rates[0]!.trend).toMatch(/^0\.0023333333333333333/);
    expect(rates[0]).toMatchObject({ same: true, flag: rates[0]!.trend });
    // What the rules compared is still the rate: the decision and the draft read the same number.
    const [decision] = (await computeDecisions(db(), config, AS_OF)).filter((d) => d.ip === ip);
    expect(decision!.complaintRate7d).toBeCloseTo(7 / 3000, 15);
  });

  it('keeps rolling trends per IP and totals per configured pool', async () => {
    await seedDataset(fx);
    await rebuildAll(db(), config);
    const trend = await db().query(
      `select recipients_7d, complaints_7d, complaint_rate_7d, recipients_28d, red_days_7d, yellow_days_7d, recipients_prev_7d,
              volume_change_wow, complaint_rate_change_wow
       from analytics.ip_trend where ip = '198.51.100.2' and day = $1`,
      [AS_OF],
    );
    expect(trend).toEqual([
      { recipients_7d: 7000, complaints_7d: 7, complaint_rate_7d: 0.001, recipients_28d: 7000, red_days_7d: 0, yellow_days_7d: 0, recipients_prev_7d: 0, volume_change_wow: null, complaint_rate_change_wow: null },
    ]);
    const six = await db().query(`select day, recipients_7d, trap_hits_7d, red_days_7d, recipients_prev_7d, volume_change_wow
                                  from analytics.ip_trend where ip = '198.51.100.6' order by day`);
    expect(six).toEqual([
      { day: '2026-11-10', recipients_7d: 0, trap_hits_7d: 0, red_days_7d: 0, recipients_prev_7d: 0, volume_change_wow: null }, // complaints only
      { day: '2026-11-13', recipients_7d: 5000, trap_hits_7d: 4, red_days_7d: 1, recipients_prev_7d: 0, volume_change_wow: null },
    ]);
    // Week over week: 3,500 in the week before W against 7,000 in W is +100 %.
    await fx.snds({ ip: '198.51.100.1', day: '2026-11-07', recipients: 3500 });
    await recomputeDays(db(), config, fx.takeTouched());
    const wow = await db().query(`select recipients_prev_7d, volume_change_wow, complaint_rate_change_wow from analytics.ip_trend
                                  where ip = '198.51.100.1' and day = $1`, [AS_OF]);
    // The 50 complaints of D-8 fall in the previous week: the rate fell by 50 / 3,500.
    expect(wow).toEqual([{ recipients_prev_7d: 3500, volume_change_wow: 1, complaint_rate_change_wow: -50 / 3500 }]);

    const pools = await db().query(`select pool, ips, message_recipients, complaints, red_ips, blocked_ips from analytics.pool_day where day = $1 order by pool`, [AS_OF]);
    // dedicated = .0–.7 (the /29) plus .7 again: counted once; on D it has .1–.5 and .7. blocked_ips follows the
    // current block list (the download after D, which blocks .14).
    expect(pools).toEqual([
      { pool: 'all', ips: 13, message_recipients: 13000, complaints: 4, red_ips: 1, blocked_ips: 1 },
      { pool: 'dedicated', ips: 6, message_recipients: 6000, complaints: 4, red_ips: 1, blocked_ips: 0 },
    ]);
    const flags = await db().query(`select pool, ips, start_delisting, fix_first, at_risk, ok, no_data from analytics.pool_flag where as_of = $1 order by pool`, [AS_OF]);
    expect(flags).toEqual([
      { pool: 'all', ips: 17, start_delisting: 2, fix_first: 4, at_risk: 7, ok: 2, no_data: 2 },
      { pool: 'dedicated', ips: 7, start_delisting: 1, fix_first: 0, at_risk: 4, ok: 1, no_data: 1 },
    ]);
  });
});
