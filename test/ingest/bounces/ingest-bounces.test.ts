import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { configSchema } from '../../../config/schema.js';
import { fixedClock } from '../../../lib/clock.js';
import { buildBounce, toMbox, type BounceSpec } from '../../../demo/generate-bounces.js';
import { ingestBounces } from '../../../ingest/bounces/ingest-bounces.js';
import { mboxSource } from '../../../ingest/mailbox/mbox-source.js';
import { computeDecisions } from '../../../transform/decisions.js';

const dir = mkdtempSync(join(tmpdir(), 'repwatch-bounces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = configSchema.parse({});
const clock = fixedClock('2026-11-25T06:00:00Z');

function spec(code: string, ip: string, day: string, id: string, extra: Partial<BounceSpec> = {}): BounceSpec {
  return { code, ip, recipient: 'someone@hotmail.com', senderDomain: 'shop.example', at: new Date(`${day}T10:00:00Z`), id, ...extra };
}

/** One IP per route and warning, on days inside the 7-day window ending 2026-11-24. */
const specs: BounceSpec[] = [
  spec('S3140', '203.0.113.13', '2026-11-20', 'a1'),
  spec('5.7.606', '198.51.100.27', '2026-11-21', 'a2', { recipient: 'someone@contoso.com' }),
  spec('5.7.511', '198.51.100.24', '2026-11-22', 'a3', { recipient: 'someone@contoso.com' }),
  spec('S775', '203.0.113.16', '2026-11-22', 'a4'),
  spec('5.7.515', '203.0.113.11', '2026-11-23', 'a5'),
  // Both Outlook.com and Microsoft 365 block 203.0.113.14: both routes, outlook_form first.
  spec('5.7.606', '203.0.113.14', '2026-11-23', 'a6', { recipient: 'someone@fabrikam.com' }),
  spec('S3150', '203.0.113.14', '2026-11-24', 'a7', { shape: 'plain' }),
  spec('other', '203.0.113.18', '2026-11-24', 'a8'),
];
const garbage = 'this is not a mail message at all\n\n';
const mboxPath = join(dir, 'bounces.mbox');
writeFileSync(mboxPath, toMbox([...specs.map((s) => ({ at: s.at, text: buildBounce(s) })), { at: new Date('2026-11-24T00:00:00Z'), text: garbage }]));

describeEachBackend('ingest bounces', (db) => {
  it('stores every bounce once, writes block evidence and changes the decisions', async () => {
    const database = db();
    const first = await ingestBounces({ database, config, clock }, mboxSource({ path: mboxPath, name: 'test-mbox' }));
    expect(first.error).toBeUndefined();
    expect(first.seen).toBe(9);
    expect(first.stored).toBe(8);
    expect(first.quarantined).toBe(1);
    expect(first.byClassification).toMatchObject({ dsn: 7, plain_bounce: 1, malformed: 1 });
    expect(first.evidence).toBe(7);

    const evidence = await database.query<{ ip: string; day: string; kind: string; route: string | null; reason: string | null }>(
      `select host(ip) as ip, day, kind, route, reason from repwatch.block_evidence where source = 'bounce' order by ip, day`,
    );
    expect(evidence).toEqual([
      { ip: '198.51.100.24', day: '2026-11-22', kind: 'block', route: 'delist_email', reason: null },
      { ip: '198.51.100.27', day: '2026-11-21', kind: 'block', route: 'office365_portal', reason: null },
      { ip: '203.0.113.11', day: '2026-11-23', kind: 'warning', route: null, reason: 'auth_requirements' },
      { ip: '203.0.113.13', day: '2026-11-20', kind: 'block', route: 'outlook_form', reason: null },
      { ip: '203.0.113.14', day: '2026-11-23', kind: 'block', route: 'office365_portal', reason: null },
      { ip: '203.0.113.14', day: '2026-11-24', kind: 'block', route: 'outlook_form', reason: null },
      { ip: '203.0.113.16', day: '2026-11-22', kind: 'warning', route: null, reason: 'reputation_deferral' },
    ]);

    const bounces = await database.query<{ n: number; no_local_part: number }>(
      `select count(*)::int as n, count(*) filter (where recipient_domain not like '%@%')::int as no_local_part from repwatch.bounce`,
    );
    expect(bounces[0]).toEqual({ n: 8, no_local_part: 8 });

    const decisions = new Map((await computeDecisions(database, config, '2026-11-24')).map((d) => [d.ip, d]));
    expect(decisions.get('203.0.113.13')).toMatchObject({ blocked: true, route: 'outlook_form' });
    expect(decisions.get('198.51.100.27')).toMatchObject({ blocked: true, route: 'office365_portal' });
    expect(decisions.get('198.51.100.24')).toMatchObject({ blocked: true, route: 'delist_email' });
    expect(decisions.get('203.0.113.14')).toMatchObject({ blocked: true, route: 'outlook_form', routes: ['outlook_form', 'office365_portal'] });
    expect(decisions.get('203.0.113.16')).toMatchObject({ blocked: false, status: 'at_risk' });
    expect(decisions.get('203.0.113.16')!.reasons).toContain('reputation_deferral');
    expect(decisions.get('203.0.113.11')!.reasons).toContain('auth_requirements');
    expect(decisions.has('203.0.113.18')).toBe(false);

    // A rerun over the same mbox counts nothing twice.
    const second = await ingestBounces({ database, config, clock }, mboxSource({ path: mboxPath, name: 'test-mbox' }));
    expect(second).toMatchObject({ seen: 9, stored: 0, duplicates: 9, evidence: 0 });
    const counts = await database.query<{ bounces: number; evidence: number; messages: number }>(
      `select (select count(*) from repwatch.bounce)::int as bounces,
              (select count(*) from repwatch.block_evidence where source = 'bounce')::int as evidence,
              (select count(*) from repwatch.mail_message where stream = 'bounces')::int as messages`,
    );
    expect(counts[0]).toEqual({ bounces: 8, evidence: 7, messages: 9 });
    const quarantined = await database.query<{ reason: string }>(`select reason from repwatch.mail_message where stream = 'bounces' and quarantined`);
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]!.reason).toMatch(/header|delivery|bounce|SMTP/i);
  });
});
