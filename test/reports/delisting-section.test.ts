import { beforeAll, expect, it } from 'vitest';
import { describeEachBackend } from '../support/backends.js';
import { configSchema } from '../../config/schema.js';
import { buildWeeklyReport, type WeeklyReport } from '../../reports/weekly-report.js';
import { openCase, noteCase } from '../../delisting/cases.js';
import { AS_OF, HOSTILE, IPS, insertFixture } from './fixture.js';

const config = configSchema.parse({});

/** Issue 8: the weekly report shows the delisting cases, other blocklists and authentication results. */
describeEachBackend('weekly report: delisting cases, other blocklists, authentication', (db) => {
  let report: WeeklyReport;
  beforeAll(async () => {
    const database = db();
    await insertFixture(database);
    const opened = await openCase(database, { target: IPS.delist, route: 'outlook_form', note: 'sent the form', at: new Date('2026-11-18T09:00:00Z') });
    await noteCase(database, { caseId: opened.id, state: 'conditionally_mitigated', body: `Microsoft replied: ${HOSTILE.subject}`, direction: 'in', at: new Date('2026-11-19T09:00:00Z') });
    await database.query(
      `insert into repwatch.dnsbl_result (checked_at, day, ip, zone, outcome, listed, answer, meaning, new_listing)
       values ('2026-11-21T05:30:00Z', '2026-11-21', $1, 'bl.example.test', 'listed', true, '{127.0.0.2}', $2, true),
              ('2026-11-21T05:30:00Z', '2026-11-21', $3, 'bl.example.test', 'not_listed', false, '{}', null, false)`,
      [IPS.fix, `spam source ${HOSTILE.reason}`, IPS.ok],
    );
    await database.query(
      `insert into repwatch.auth_check (checked_at, day, domain, origin, spf_result, dkim_result, dmarc_result, dmarc_policy, daily_volume, meets_requirement, flagged, problems)
       values ('2026-11-21T06:00:00Z', '2026-11-21', $1, 'complaints', 'fail', 'none', 'fail', null, 12000, false, true, $2)`,
      [HOSTILE.fromDomain, ['no DMARC record', HOSTILE.campaign]],
    );
    report = await buildWeeklyReport(database, config, AS_OF, new Date('2026-11-23T07:00:00Z'));
  });

  it('holds the cases with their state and correspondence count', () => {
    expect(report.data.delisting.cases).toHaveLength(1);
    expect(report.data.delisting.cases[0]).toMatchObject({ target: IPS.delist, route: 'outlook_form', state: 'conditionally_mitigated', messages: 2 });
  });

  it('holds listings on other blocklists (new ones marked) and counts the clean pairs', () => {
    expect(report.data.delisting.blocklists.listings).toEqual([
      expect.objectContaining({ ip: IPS.fix, zone: 'bl.example.test', outcome: 'listed', answer: '127.0.0.2', isNew: true }),
    ]);
    expect(report.data.delisting.blocklists.cleanPairs).toBe(1);
  });

  it('flags sending domains that fail the bulk-sender rules', () => {
    expect(report.data.delisting.auth).toEqual([expect.objectContaining({ domain: HOSTILE.fromDomain, flagged: true, meetsRequirement: false, dailyVolume: 12000 })]);
  });

  it('shows all three in HTML and Markdown, hostile text escaped', () => {
    expect(report.html).toContain('<section id="delisting">');
    expect(report.html).toContain('conditionally_mitigated');
    expect(report.html).toContain('bl.example.test');
    expect(report.html).toContain('(flagged)');
    for (const hostile of [HOSTILE.subject, HOSTILE.reason, HOSTILE.fromDomain, HOSTILE.campaign]) expect(report.html).not.toContain(hostile);
    expect(report.markdown).toMatch(/## Delisting cases: 1/);
    expect(report.markdown).toMatch(/## Other DNS blocklists: 1 listings/);
    expect(report.markdown).toMatch(/## Bulk-sender authentication: 1 domain\(s\) flagged/);
    expect(JSON.parse(report.json).delisting.cases[0].state).toBe('conditionally_mitigated');
  });
});
