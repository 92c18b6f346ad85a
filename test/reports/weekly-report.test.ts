import { beforeAll, expect, it } from 'vitest';
import Papa from 'papaparse';
import { describeEachBackend } from '../support/backends.js';
import { configSchema } from '../../config/schema.js';
import { buildWeeklyReport, type WeeklyReport } from '../../reports/weekly-report.js';
import { renderMarkdown } from '../../reports/render-markdown.js';
import { DECISION_RULES_VERSION } from '../../transform/decisions.js';
import { AS_OF, HOSTILE, IPS, PREVIOUS_AS_OF, insertFixture } from './fixture.js';

const config = configSchema.parse({
  pools: { customers: ['203.0.113.0/24'] },
  snds: { feeds: [{ name: 'main', dataUrl: 'https://example.invalid/data', linkCreatedOn: '2026-10-28' }, { name: 'other' }] },
});

describeEachBackend('weekly report content', (db) => {
  let report: WeeklyReport;
  beforeAll(async () => {
    await insertFixture(db());
    report = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
  });

  it('says nothing about missing JMRP reports when the week has some; says it for a week without, naming the latest', async () => {
    expect(report.data.notes.join(' ')).not.toMatch(/No JMRP report/);
    const later = await buildWeeklyReport(db(), config, '2026-11-29', new Date('2026-11-30T07:00:00Z'));
    expect(later.data.notes.join(' ')).toMatch(/No JMRP report is dated this week \(the latest is dated 2026-11-21\)/);
  });

  it('covers the ISO week ending with the as-of date and compares with the week before', () => {
    expect(report.data.period).toEqual({ week: '2026-W47', from: '2026-11-16', to: AS_OF, previousFrom: '2026-11-09', previousTo: '2026-11-15', isoWeek: true });
    const { current, previous } = report.data.headline;
    // Six days of data (17 November is a gap); "ok" also lacks 18 November.
    expect(current.recipients).toBe(6000 + 12000 + 30000 + 4000 + (700_021 - 100_005));
    expect(current.complaints).toBe(60 + 12 + 30);
    expect(current.complaintRate).toBeCloseTo(102 / 652_016, 12);
    expect(current.trapHits).toBe(3);
    expect(previous.recipients).toBe(7000 + 14000 + 35000 + 5600 + 7 * 100_000 + (7 + 8 + 9 + 10 + 11 + 12 + 13));
    expect(report.data.headline.statusCounts).toEqual({ start_delisting: 1, fix_first: 1, at_risk: 1, ok: 2, no_data: 0 });
    expect(report.data.headline.previousStatusCounts).toEqual({ start_delisting: 0, fix_first: 0, at_risk: 1, ok: 2, no_data: 0 });
  });

  it('lists decisions most urgent first, with a playbook and pre-filled request for blocked IPs', () => {
    const items = report.data.decisions.items;
    expect(items.map((d) => [d.ip, d.status])).toEqual([
      [IPS.delist, 'start_delisting'],
      [IPS.fix, 'fix_first'],
      [IPS.risk, 'at_risk'],
    ]);
    const delist = items[0]!;
    // The request is the one `repwatch delist draft` pre-fills.
    expect(delist.playbooks?.map((p) => p.route)).toEqual(['outlook_form']);
    const request = Object.fromEntries(delist.playbooks![0]!.request.map((r) => [r.label, r.value]));
    expect(request['Outgoing IP addresses or ranges']).toMatch(new RegExp(`^${IPS.delist.replace(/\./g, '\\.')}(/32)?$`));
    expect(request['Sender domain']).toBe('news.example');
    expect(request['Error messages']).toContain(HOSTILE.details); // from the SNDS IP Status details
    expect(delist.playbooks![0]!.steps.length).toBeGreaterThan(3);
    // 17 November has no SNDS data at all: the request says to check first, as `delist draft` does.
    expect(delist.draftNote).toMatch(/^Check first: SNDS data covers 6 of the 7 days of the window 2026-11-16 … 2026-11-22 \(the latest day with data from every feed is 2026-11-22\): days without data count as clean/);
    const fix = items[1]!;
    expect(fix.reasons).toEqual(['complaint_rate', 'trap_hits', 'red_filter']);
    expect(fix.toFix).toHaveLength(3);
    expect(fix.playbooks?.[0]).toMatchObject({ route: 'outlook_form', request: [] });
    expect(fix.draftNote).toMatch(/No delisting request yet/);
    expect(items[2]!.playbooks).toBeUndefined();
    // 28 days of complaint rate for the sparklines; 17 November (no data) is a gap.
    expect(fix.rate28d).toHaveLength(28);
    expect(fix.rate28d![27]).toBeCloseTo(10 / 2000, 9);
    expect(fix.rate28d![22]).toBeNull();
  });

  it('charts the IPs needing action, then the biggest senders, over 28 days with gaps kept', () => {
    const charts = report.data.charts.ips;
    expect(charts.map((c) => [c.ip, c.why])).toEqual([
      [IPS.delist, 'needs_action'],
      [IPS.fix, 'needs_action'],
      [IPS.risk, 'needs_action'],
      [IPS.big, 'top_volume'],
      [IPS.ok, 'top_volume'],
    ]);
    const ok = charts.find((c) => c.ip === IPS.ok)!;
    expect(ok.days).toHaveLength(28);
    expect(ok.days.at(-1)!.day).toBe(AS_OF);
    expect(ok.days.find((d) => d.day === '2026-11-18')!.recipients).toBeNull();
    expect(report.data.charts.pools.map((p) => p.pool)).toEqual(['all', 'customers']);
    const customers = report.data.charts.pools[1]!.days.find((d) => d.day === AS_OF)!;
    expect(customers.recipients).toBe(1000 + 2000 + 5000 + 800);
  });

  it('reports trap hits, the block list, top campaigns and From domains of the week only', () => {
    expect(report.data.trapHits).toEqual({ total: 3, ips: [{ ip: IPS.fix, hits: 3, days: 1, lastDay: '2026-11-20' }] });
    expect(report.data.blockList.total).toBe(1);
    expect(report.data.blockList.ranges[0]).toMatchObject({ firstIp: IPS.delist, lastIp: IPS.fix, details: HOSTILE.details });
    expect(report.data.topCampaigns.map((c) => [c.campaign, c.complaints])).toEqual([
      [HOSTILE.campaign, 4],
      ['spring-sale', 2],
      ['newsletter', 1],
    ]);
    expect(report.data.topCampaigns[0]!.exampleSubject).toBe(HOSTILE.subject);
    expect(report.data.topFromDomains[0]).toEqual({ domain: HOSTILE.fromDomain, complaints: 4, ips: 1 });
  });

  it('reports link expiry, freshness, gaps, rejected rows and quarantined messages', () => {
    const [main, other] = report.data.sndsLinks;
    // Counted from the day the report is generated (2026-11-23), not from the as-of date.
    expect(main).toMatchObject({ feed: 'main', createdOn: '2026-10-28', expiresOn: '2026-11-27', daysLeft: 4, state: 'warn' });
    expect(main!.advice).toMatch(/refresh the link/);
    expect(other).toMatchObject({ feed: 'other', createdOn: null, expiresOn: null, daysLeft: null, state: 'unknown' });
    expect(other!.advice).toMatch(/linkCreatedOn/);
    const jobs = Object.fromEntries(report.data.freshness.sources.map((s) => [s.job, s]));
    expect(jobs['snds:main']).toMatchObject({ lastSuccess: '2026-11-22T06:16:00.000Z', lastStatus: 'succeeded' });
    expect(jobs['jmrp:main']).toMatchObject({ lastSuccess: '2026-11-21T10:01:00.000Z', lastStatus: 'failed', lastDetail: HOSTILE.reason });
    expect(report.data.freshness.daysWithoutData).toEqual(['2026-11-17']);
    expect(report.data.rejections).toEqual({ total: 2, groups: [{ source: 'snds', reason: HOSTILE.reason, count: 2, lastLocation: 'main 2026-11-18' }] });
    expect(report.data.quarantined).toEqual({ total: 1, groups: [{ mailbox: HOSTILE.mailbox, reason: HOSTILE.reason, count: 1 }] });
  });

  it('writes HTML with every hostile value escaped, no script, nothing loaded from the network', () => {
    const html = report.html;
    for (const value of Object.values(HOSTILE)) expect(html).not.toContain(value);
    expect(html).toContain('&lt;script&gt;window.__pwned=&quot;script&quot;&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=&quot;window.__pwned=&#39;img&#39;&quot;&gt;');
    expect(html).not.toMatch(/<(script|img|iframe|link|object|embed|foreignObject)\b/i);
    expect(html).not.toMatch(/<[a-z][^>]*\s(src|on[a-z]+)\s*=/i);
    expect(html).not.toMatch(/<[a-z][^>]*\shref\s*=\s*"(?!#)/i); // in-page links only
    expect(html).toContain('<a href="#playbook-outlook_form">');
    expect(html).toContain('<section class="playbook" id="playbook-outlook_form">');
    expect(html).toMatch(/@media print/);
    expect(html).toMatch(/<meta name="viewport"/);
    // Every chart is an inline SVG rendered by vega: five IPs and two pools.
    expect(html.match(/<svg [^>]*class="marks"/g)).toHaveLength(7);
    expect(html).toContain('max 0.3%');
    expect(html.match(/<svg class="spark"/g)).toHaveLength(3); // one per IP needing action
    expect(html).toContain('warn 0.1%');
  });

  it('writes Markdown with hostile values neutralised', () => {
    for (const value of Object.values(HOSTILE)) expect(report.markdown).not.toContain(value);
    expect(report.markdown).toMatch(/### Start delisting \(1\)/);
    expect(report.markdown).toMatch(/\| IPs with data \| \d+ \| \d+ \|/);
    expect(report.markdown).toContain('&lt;script&gt;');
    expect(report.markdown).not.toMatch(/<[a-z]/i);
    // Apostrophes and quotes are plain text in Markdown: no entity (broken as &\#39; before) shows literally.
    expect(report.markdown).toContain('onerror="window.\\_\\_pwned=\'img\'"');
    expect(report.markdown).not.toMatch(/&\\?#39;|&quot;/);
    expect(report.markdown.indexOf('Start delisting (1)')).toBeLessThan(report.markdown.indexOf('Fix first (1)'));
  });

  it('writes the decisions as CSV and everything as JSON', () => {
    const csv = Papa.parse<Record<string, string>>(report.csv, { header: true, skipEmptyLines: true });
    expect(csv.data.map((r) => [r.ip, r.status, r.reasons])).toEqual([
      [IPS.delist, 'start_delisting', ''],
      [IPS.fix, 'fix_first', 'complaint_rate;trap_hits;red_filter'],
      [IPS.risk, 'at_risk', 'yellow_filter'],
    ]);
    expect(JSON.parse(report.json)).toEqual(JSON.parse(JSON.stringify(report.data)));
  });
});

describeEachBackend('weekly report of an earlier week', (db) => {
  it('computes SNDS link expiry from the clock\'s day, not from the report\'s as-of date', async () => {
    const linked = configSchema.parse({
      snds: {
        feeds: [
          { name: 'main', dataUrl: 'https://example.invalid/a', linkCreatedOn: '2026-11-20' }, // expires 12-20
          { name: 'soon', dataUrl: 'https://example.invalid/b', linkCreatedOn: '2026-11-01' }, // expires 12-01
          { name: 'gone', dataUrl: 'https://example.invalid/c', linkCreatedOn: '2026-10-01' }, // expired 10-31
        ],
      },
    });
    // The week ending 22 November, generated on 28 November.
    const report = await buildWeeklyReport(db(), linked, AS_OF, new Date('2026-11-28T09:00:00Z'));
    expect(report.data.sndsLinks.map((l) => [l.feed, l.expiresOn, l.daysLeft, l.state])).toEqual([
      ['main', '2026-12-20', 22, 'ok'],
      ['soon', '2026-12-01', 3, 'warn'],
      ['gone', '2026-10-31', -28, 'expired'],
    ]);
    expect(report.data.sndsLinks[1]!.advice).toMatch(/refresh the link/);
    expect(report.markdown).toContain('- SNDS link main: 22 days left (ok)');
    expect(report.markdown).toMatch(/- SNDS link soon: 3 days left \(warn\) — refresh the link/);
    expect(report.markdown).toContain('- SNDS link gone: -28 days left (expired)');
  });
});

describeEachBackend('weekly report of a week in progress', (db) => {
  it('says when this week and last week have SNDS data for a different number of days', async () => {
    await insertFixture(db());
    // The fixture's week misses one day of SNDS data (its freshness test counts on that gap).
    const full = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(full.data.notes.join(' ')).toMatch(/This week has SNDS data for 6 of 7 days, the week before for 7: the changes against last week compare unequal spans\./);
    expect(full.markdown).toMatch(/compare unequal spans/);
    // The week before: its comparison does not span unequal days (or has nothing to compare), no note.
    const whole = await buildWeeklyReport(db(), config, PREVIOUS_AS_OF, new Date('2026-11-16T07:00:00Z'));
    expect(whole.data.notes.join(' ')).not.toMatch(/compare unequal spans/);
  });

  it('names a feed that has not delivered a day another feed has, instead of calling the day covered', async () => {
    // The configured feed "other" reports every day of the week but 20 November, and also the 17th that "main" lacks.
    const [download] = await db().query<{ id: number }>(
      `insert into repwatch.raw_download (source, kind, feed, location, sha256, byte_size, outcome) values ('file', 'ip_data', 'other', 'fixture', 'other-days', 0, 'loaded') returning id`,
    );
    await db().query(
      `insert into repwatch.snds_feed_day (feed, day, download_id, row_count)
       select 'other', d::date, $1, 3 from generate_series('2026-10-26'::date, $2::date, interval '1 day') d where d::date <> '2026-11-20'`,
      [download!.id, AS_OF],
    );
    const report = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(report.data.freshness.feedGaps).toEqual([
      { feed: 'main', days: ['2026-11-17'] },
      { feed: 'other', days: ['2026-11-20'] },
    ]);
    expect(report.markdown).toContain('- SNDS feed other has no data for 2026-11-20 (its IPs count those days as clean)');
    expect(report.html).toContain('SNDS feed main has no data for 2026-11-17 (its IPs count those days as clean).');
  });
});

describeEachBackend('weekly report and a block list fetched after the week', (db) => {
  it('says when the current block list blocks IPs the week\'s decisions do not show as blocked', async () => {
    await insertFixture(db());
    const before = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(before.data.notes.join(' ')).not.toMatch(/IP Status list fetched on/);
    const [download] = await db().query<{ id: number }>(
      `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
       values ('url', 'ip_status', 'main', 'https://example.invalid/status', '2026-11-25T06:00:00Z', 'def', 10, 'loaded') returning id`,
    );
    await db().query(
      `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details) values ($1, 'main', 1, '198.51.100.99', '198.51.100.99', true, 'blocked')`,
      [download!.id],
    );
    const after = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-25T07:00:00Z'));
    expect(after.data.notes.join(' ')).toMatch(/The IP Status list fetched on 2026-11-25, after this week ended, blocks 1 range\(s\) that this week's decisions \(as of 2026-11-22\) do not show as blocked/);
    expect(after.markdown).toMatch(/repwatch flags --as-of 2026-11-25/);
    // The newer list no longer blocks the week's start_delisting IP: its request may be for a lifted block.
    expect(after.data.notes.join(' ')).toMatch(/The IP Status list fetched on 2026-11-25, after this week ended, no longer shows 1 IP\(s\) this week's decisions want delisted as blocked \(203\.0\.113\.10\): their blocks may have been lifted since/);
    const delist = after.data.decisions.items.find((i) => i.ip === IPS.delist)!;
    expect(delist.draftNote).toMatch(/the IP Status list fetched on 2026-11-25, after 2026-11-22, does not show 203\.0\.113\.10 as blocked/);
    expect(before.data.decisions.items.find((i) => i.ip === IPS.delist)!.draftNote ?? '').not.toMatch(/does not show/);
  });
});

describeEachBackend('weekly report: signals the decision rules do not see', (db) => {
  it('names IPs whose SNDS complaint band is over the warning line while JMRP says less, and complaints without SNDS volume (left out of the rate)', async () => {
    await insertFixture(db());
    const before = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
    await db().query(
      `insert into repwatch.ip_day_fact (ip, day, rcpt_commands, data_commands, message_recipients, filter_result, snds_complaint_band, trap_hits, complaints, has_snds, has_red, has_yellow)
       values ('192.0.2.7', '2026-11-20', 5000, 5000, 5000, 'GREEN', '1% - < 2%', 0, 0, true, false, false),
              ('192.0.2.8', '2026-11-20', 5000, 5000, 5000, 'GREEN', '< 0.1%', 0, 0, true, false, false),
              ('192.0.2.30', '2026-11-21', null, null, null, null, null, null, 12, false, false, false)`,
    );
    const after = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
    const notes = after.data.notes.join(' ');
    expect(notes).toMatch(/1 IP\(s\) have an SNDS complaint band at or over the 0\.100% warning line this week while their JMRP rate is lower or unknown: 192\.0\.2\.7 \(SNDS band 1% - < 2%, JMRP rate 0\.000%\)/);
    expect(notes).not.toMatch(/192\.0\.2\.8/);
    expect(notes).toMatch(/Complaints from IPs without SNDS volume this week: 192\.0\.2\.30 \(12\)\. Their rate is unknown, not zero/);
    // The twelve are counted, and the rate is that of the IPs with volume.
    const { current } = after.data.headline;
    expect(current.complaints).toBe(before.data.headline.current.complaints + 12);
    expect(current.complaintsWithoutVolume).toBe(12);
    expect(current.complaintRate).toBeCloseTo((current.complaints - 12) / current.recipients, 12);
  });
});

describeEachBackend('weekly report under other thresholds', (db) => {
  it('recomputes decisions stored under other thresholds with the configured ones, says so, and stores them', async () => {
    await insertFixture(db());
    const strict = configSchema.parse({ ...JSON.parse(JSON.stringify({ pools: config.pools })), thresholds: { complaintRateWarn: 0.00001, complaintRateMax: 0.002 } });
    const first = await buildWeeklyReport(db(), strict, AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(first.data.notes.join(' ')).toContain(`Decisions for ${AS_OF} had been made with other thresholds or an earlier version of the rules; they were recomputed with the configured ones`);
    const stored = await db().query<{ warn: number; max: number; n: number }>(
      `select complaint_rate_warn as warn, complaint_rate_max as max, count(*)::int as n from repwatch.ip_flag where as_of = $1 group by 1, 2`,
      [AS_OF],
    );
    expect(stored.map((r) => [r.warn, r.max])).toEqual([[0.00001, 0.002]]);
    // The big sender's 0.005% rate is over a warning threshold of 0.001%: at risk under these thresholds.
    expect(first.data.decisions.items.find((d) => d.ip === IPS.big)?.status).toBe('at_risk');

    // The same thresholds again: the stored decisions are current, nothing is recomputed.
    const again = await buildWeeklyReport(db(), strict, AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(again.data.notes.join(' ')).not.toMatch(/recomputed|were not stored/);
    // Back to the defaults: recomputed again, the big sender is fine.
    const defaults = await buildWeeklyReport(db(), configSchema.parse({ pools: config.pools }), AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(defaults.data.notes.join(' ')).toMatch(/made with other thresholds/);
    const [big] = await db().query<{ status: string; warn: number }>(`select status, complaint_rate_warn as warn from repwatch.ip_flag where as_of = $1 and ip = $2`, [AS_OF, IPS.big]);
    expect(big).toEqual({ status: 'ok', warn: configSchema.parse({}).thresholds.complaintRateWarn });
  });

});

describeEachBackend('weekly report over decisions of an earlier version of the rules', (db) => {
  it('recomputes decisions stored under an earlier version of the rules (or before versions were recorded)', async () => {
    await insertFixture(db());
    await buildWeeklyReport(db(), configSchema.parse({ pools: config.pools }), AS_OF, new Date('2026-11-23T07:00:00Z'));
    const versions = async () => (await db().query<{ v: number | null }>(`select distinct rules_version as v from repwatch.ip_flag where as_of = $1`, [AS_OF])).map((r) => r.v);
    expect(await versions()).toEqual([DECISION_RULES_VERSION]);
    await db().query(`update repwatch.ip_flag set rules_version = null where as_of = $1`, [AS_OF]);
    const report = await buildWeeklyReport(db(), configSchema.parse({ pools: config.pools }), AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(report.data.notes.join(' ')).toContain(`Decisions for ${AS_OF} had been made with other thresholds or an earlier version of the rules`);
    expect(await versions()).toEqual([DECISION_RULES_VERSION]);
  });
});

describeEachBackend('weekly report of an empty warehouse', (db) => {
  it('says there are no decisions and still writes every format', async () => {
    const report = await buildWeeklyReport(db(), configSchema.parse({}), AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(report.data.notes.join(' ')).toMatch(/No decisions for 2026-11-22/);
    expect(report.data.notes.join(' ')).toMatch(/No JMRP report is dated this week \(none has ever been stored\): .*0\.000% means no reports, not no complaints/);
    expect(report.data.decisions.items).toEqual([]);
    expect(report.data.headline.current).toEqual({ recipients: 0, complaints: 0, complaintsWithoutVolume: 0, complaintRate: null, trapHits: 0, ips: 0 });
    expect(report.data.freshness.daysWithoutData).toHaveLength(7);
    expect(report.data.charts.ips).toEqual([]);
    expect(report.html).toContain('No IPs to chart.');
    expect(report.markdown).toContain('### Start delisting (0)');
    expect(report.csv.trim()).toBe('as_of,ip,status,reasons,recipients_7d,complaints_7d,complaint_rate_7d,trap_hits_7d,blocked,route');
  });

  it('shows the configured sending domains (and their subdomains) as they are, every other From domain defanged', async () => {
    const own = configSchema.parse({ auth: { domains: ['Example.com'] } });
    const { data } = await buildWeeklyReport(db(), own, AS_OF, new Date('2026-11-23T07:00:00Z'));
    expect(data.ownDomains).toEqual(['example.com']);
    data.topFromDomains = ['example.com', 'news.example.com', 'notexample.com', 'example.com.evil.test'].map((domain) => ({ domain, complaints: 1, ips: 1 }));
    const markdown = renderMarkdown(data);
    expect(markdown).toContain('- example.com: 1');
    expect(markdown).toContain('- news.example.com: 1');
    expect(markdown).toContain('- notexample\\[.\\]com: 1');
    expect(markdown).toContain('- example.com.evil\\[.\\]test: 1');
    expect(renderMarkdown(data, 'text')).toContain('- notexample[.]com: 1');
  });
});

describeEachBackend('weekly report whose week before has no JMRP report', (db) => {
  it("says the week before's 0.000% means no reports, not no complaints", async () => {
    await insertFixture(db());
    await db().query(`delete from repwatch.feedback_report where day < '2026-11-16'`);
    const report = await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'));
    const notes = report.data.notes.join(' ');
    expect(notes).toMatch(/No JMRP report is dated the week before \(2026-11-09 … 2026-11-15\): its 0\.000% complaint rate means no reports, not no complaints/);
    expect(notes).not.toMatch(/No JMRP report is dated this week/);
  });
});
