import { expect, it } from 'vitest';
import { describeEachBackend } from '../support/backends.js';
import type { Database } from '../../db/connection.js';
import { listCases, noteCase, normaliseTarget, openCase } from '../../delisting/cases.js';
import { detectRelistings } from '../../delisting/relisting.js';

async function statusDownload(database: Database, fetchedAt: string, first: string, last: string): Promise<void> {
  const [row] = await database.query<{ id: number }>(
    `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome)
     values ('file', 'ip_status', 'main', 'test', $1::timestamptz, md5(random()::text), 0, 'loaded') returning id`,
    [fetchedAt],
  );
  await database.query(
    `insert into repwatch.snds_status_range (download_id, feed, line_no, first_ip, last_ip, blocked, details)
     values ($1, 'main', 1, $2::inet, $3::inet, true, 'Blocked due to user complaints or other evidence of spamming')`,
    [row!.id, first, last],
  );
}

async function relistedEvidence(database: Database): Promise<{ ip: string; day: string; ref_id: number }[]> {
  return database.query(`select host(ip) as ip, day, ref_id from repwatch.block_evidence where reason = 'relisted' order by ip, day`);
}

it('normalises targets to CIDR and refuses what is not an address', () => {
  expect(normaliseTarget('203.0.113.5')).toBe('203.0.113.5/32');
  expect(normaliseTarget('203.0.113.77/28')).toBe('203.0.113.64/28');
  expect(normaliseTarget('2001:db8::1')).toBe('2001:db8::1/128');
  expect(() => normaliseTarget('203.0.113')).toThrow(/not an IP address/);
});

describeEachBackend('delisting cases and relistings', (db) => {
  it('a range case closed, then an SNDS IP Status block fetched later: relisted for the IPs of the range', async () => {
    const database = db();
    // 203.0.113.66 has block evidence in the range; the status range overlaps the case's /28 only partly.
    await database.query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('203.0.113.66', '2026-11-10', 'block', 'outlook_form', 'bounce')`);
    const opened = await openCase(database, { target: '203.0.113.64/28', route: 'outlook_form', note: 'form sent', at: new Date('2026-11-12T09:00:00Z') });
    expect(opened).toMatchObject({ target: '203.0.113.64/28', state: 'requested', closedAt: null });

    // A status download before the case closed changes nothing.
    await statusDownload(database, '2026-11-12T10:00:00Z', '203.0.113.70', '203.0.113.90');
    await noteCase(database, { caseId: opened.id, state: 'delisted', body: 'Your IP has been delisted', direction: 'in', at: new Date('2026-11-13T09:00:00Z') });
    expect(await detectRelistings(database as never, new Date('2026-11-13T10:00:00Z'))).toEqual({ cases: [], days: [] });

    await statusDownload(database, '2026-11-20T06:15:00Z', '203.0.113.70', '203.0.113.90');
    const found = await database.transaction((s) => detectRelistings(s, new Date('2026-11-20T07:00:00Z')));
    expect(found).toEqual({ cases: [opened.id], days: ['2026-11-20'] });
    expect(await relistedEvidence(database)).toEqual([{ ip: '203.0.113.66', day: '2026-11-20', ref_id: opened.id }]);

    const [relisted] = await listCases(database, { ip: '203.0.113.66' });
    expect(relisted).toMatchObject({ id: opened.id, state: 'relisted', closedAt: new Date('2026-11-13T09:00:00Z') });
    expect(relisted!.messages.map((m) => m.state)).toEqual(['requested', 'delisted', 'relisted']);
    expect(relisted!.messages[2]!.body).toMatch(/blocked again on 2026-11-20 .*SNDS IP Status lists 203\.0\.113\.70-203\.0\.113\.90/);

    // Idempotent: a relisted case is not relisted twice.
    expect(await database.transaction((s) => detectRelistings(s, new Date('2026-11-21T07:00:00Z')))).toEqual({ cases: [], days: [] });
    expect(await listCases(database, { ip: '198.51.100.1' })).toEqual([]);
  });

  it('reopening a closed case clears its closing time, so a later block is not taken for a relisting', async () => {
    const database = db();
    const c = await openCase(database, { target: '198.51.100.50', route: 'office365_portal', at: new Date('2026-11-01T09:00:00Z') });
    const closed = await noteCase(database, { caseId: c.id, state: 'mitigated', at: new Date('2026-11-02T15:00:00Z') });
    expect(closed.case.closedAt).toEqual(new Date('2026-11-02T15:00:00Z'));
    const reopened = await noteCase(database, { caseId: c.id, state: 'escalated', body: 'Microsoft answered: not yet', direction: 'in', at: new Date('2026-11-03T10:00:00Z') });
    expect(reopened.case).toMatchObject({ state: 'escalated', closedAt: null });
    await database.query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('198.51.100.50', '2026-11-04', 'block', 'office365_portal', 'bounce')`);
    expect((await database.transaction((s) => detectRelistings(s, new Date('2026-11-05T06:00:00Z')))).cases).not.toContain(c.id);
    const closedAgain = await noteCase(database, { caseId: c.id, state: 'delisted', at: new Date('2026-11-06T09:00:00Z') });
    expect(closedAgain.case.closedAt).toEqual(new Date('2026-11-06T09:00:00Z'));
  });

  it('a relisted case closed again takes the new closing time: the block that relisted it does not relist it again', async () => {
    const database = db();
    const c = await openCase(database, { target: '192.0.2.60', route: 'delist_email', at: new Date('2026-11-01T09:00:00Z') });
    await noteCase(database, { caseId: c.id, state: 'delisted', at: new Date('2026-11-02T09:00:00Z') });
    await database.query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('192.0.2.60', '2026-11-04', 'block', 'delist_email', 'bounce')`);
    expect((await database.transaction((s) => detectRelistings(s, new Date('2026-11-04T12:00:00Z')))).cases).toEqual([c.id]);
    const closed = await noteCase(database, { caseId: c.id, state: 'delisted', body: 'delisted again', at: new Date('2026-11-06T09:00:00Z') });
    expect(closed.case).toMatchObject({ state: 'delisted', closedAt: new Date('2026-11-06T09:00:00Z') });
    expect((await database.transaction((s) => detectRelistings(s, new Date('2026-11-06T12:00:00Z')))).cases).toEqual([]);
    // A case already closed keeps its first closing time (mitigated, then delisted).
    const d = await openCase(database, { target: '192.0.2.61', route: 'delist_email', at: new Date('2026-11-01T09:00:00Z') });
    await noteCase(database, { caseId: d.id, state: 'mitigated', at: new Date('2026-11-02T09:00:00Z') });
    expect((await noteCase(database, { caseId: d.id, state: 'delisted', at: new Date('2026-11-03T09:00:00Z') })).case.closedAt).toEqual(new Date('2026-11-02T09:00:00Z'));
  });

  it('the same IP Status list downloaded again after a closing is not a relisting; a list first seen after it is', async () => {
    const database = db();
    await statusDownload(database, '2026-11-22T06:00:00Z', '192.0.2.10', '192.0.2.10');
    const [first] = await database.query<{ id: number }>(`select id from repwatch.raw_download where fetched_at = '2026-11-22T06:00:00Z'`);
    const c = await openCase(database, { target: '192.0.2.10', route: 'outlook_form', at: new Date('2026-11-22T09:00:00Z') });
    await noteCase(database, { caseId: c.id, state: 'mitigated', at: new Date('2026-11-23T09:00:00Z') });
    await database.query(
      `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome, duplicate_of)
       values ('file', 'ip_status', 'main', 'test', '2026-11-24T06:00:00Z', md5(random()::text), 0, 'duplicate', $1)`,
      [first!.id],
    );
    expect((await database.transaction((s) => detectRelistings(s, new Date('2026-11-24T07:00:00Z')))).cases).toEqual([]);
    await statusDownload(database, '2026-11-25T06:00:00Z', '192.0.2.10', '192.0.2.10');
    expect(await database.transaction((s) => detectRelistings(s, new Date('2026-11-25T07:00:00Z')))).toEqual({ cases: [c.id], days: ['2026-11-25'] });
  });

  it('opening a second active case on the same route for overlapping IPs is refused unless forced; no block evidence is a warning', async () => {
    const database = db();
    await database.query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('192.0.2.71', '2026-11-10', 'block', 'office365_portal', 'bounce')`);
    const first = await openCase(database, { target: '192.0.2.71', route: 'office365_portal', at: new Date('2026-11-10T09:00:00Z') });
    expect(first.warnings).toEqual([]);
    await expect(openCase(database, { target: '192.0.2.64/28', route: 'office365_portal', at: new Date('2026-11-10T10:00:00Z') })).rejects.toThrow(
      new RegExp(`case #${first.id} \\(192\\.0\\.2\\.71/32, requested\\) already covers 192\\.0\\.2\\.64/28 on route office365_portal: .*delist note --case ${first.id}`),
    );
    // Another route, a forced open, and a closed case are no conflict.
    const other = await openCase(database, { target: '192.0.2.71', route: 'delist_email', at: new Date('2026-11-10T10:00:00Z') });
    expect(other.warnings).toEqual([
      'no block evidence for 192.0.2.71/32 on route delist_email (no stored bounce with its code): check that this is the route the bounces name',
    ]);
    const forced = await openCase(database, { target: '192.0.2.71', route: 'office365_portal', at: new Date('2026-11-10T11:00:00Z'), force: true });
    expect(forced.id).toBeGreaterThan(first.id);
    await noteCase(database, { caseId: first.id, state: 'delisted', at: new Date('2026-11-11T09:00:00Z') });
    await noteCase(database, { caseId: forced.id, state: 'refused', at: new Date('2026-11-11T09:00:00Z') });
    expect((await openCase(database, { target: '192.0.2.71', route: 'office365_portal', at: new Date('2026-11-12T09:00:00Z') })).state).toBe('requested');
  });

  it('a bounce block only counts after the day the case closed; relisted by hand writes evidence once', async () => {
    const database = db();
    const c = await openCase(database, { target: '198.51.100.40', route: 'office365_portal', at: new Date('2026-11-01T09:00:00Z') });
    await noteCase(database, { caseId: c.id, state: 'mitigated', at: new Date('2026-11-02T15:00:00Z') });
    // Same day as the closing: the block seen that day was before the delisting took effect.
    await database.query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('198.51.100.40', '2026-11-02', 'block', 'office365_portal', 'bounce')`);
    expect((await database.transaction((s) => detectRelistings(s, new Date('2026-11-02T16:00:00Z')))).cases).toEqual([]);
    await database.query(`insert into repwatch.block_evidence (ip, day, kind, route, source) values ('198.51.100.40', '2026-11-05', 'block', 'office365_portal', 'bounce')`);
    expect(await database.transaction((s) => detectRelistings(s, new Date('2026-11-06T06:00:00Z')))).toEqual({ cases: [c.id], days: ['2026-11-05'] });

    const manual = await openCase(database, { target: '198.51.100.41', route: 'outlook_form', at: new Date('2026-11-01T09:00:00Z') });
    const first = await noteCase(database, { caseId: manual.id, state: 'relisted', body: 'Microsoft wrote: blocked again', direction: 'in', at: new Date('2026-11-07T08:00:00Z') });
    expect(first.relistedDays).toEqual(['2026-11-07']);
    const again = await noteCase(database, { caseId: manual.id, state: 'relisted', body: 'still blocked', at: new Date('2026-11-08T08:00:00Z') });
    expect(again.relistedDays).toEqual([]);
    expect(again.case.messages).toHaveLength(3);
    const evidence = await database.query<{ ip: string; day: string }>(`select host(ip) as ip, day from repwatch.block_evidence where reason = 'relisted' and ip <<= '198.51.100.0/24' order by ip`);
    expect(evidence).toEqual([
      { ip: '198.51.100.40', day: '2026-11-05' },
      { ip: '198.51.100.41', day: '2026-11-07' },
    ]);
  });
});
