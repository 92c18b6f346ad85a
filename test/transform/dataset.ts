import { addDays } from '../../lib/clock.js';
import type { Fixture } from './fixture.js';

/** The as-of date of the constructed dataset; its window (7 days) is 2026-11-14 … 2026-11-20. */
export const AS_OF = '2026-11-20';
const day = (back: number) => addDays(AS_OF, -back);
const ip = (n: number) => `198.51.100.${n}`;

/** Seven clean days of 1,000 recipients ending with D, with overrides per day (0 = D, 6 = first day of W). */
async function week(fx: Fixture, perDay: (back: number) => Parameters<Fixture['snds']>[0]): Promise<void> {
  for (let back = 0; back < 7; back++) await fx.snds(perDay(back));
}

/**
 * One IP per status and reason. `phase` lets a test load it in two halves (older days first) to
 * compare incremental recomputation with a rebuild; 'all' loads everything.
 */
export async function seedDataset(fx: Fixture, phase: 'old' | 'new' | 'all' = 'all'): Promise<void> {
  const old = phase !== 'new';
  const recent = phase !== 'old';
  const plain = (n: number) => (back: number) => ({ ip: ip(n), day: day(back) });

  if (old) {
    // .6: data only before the window (D-7 is the day before its first day) → no_data.
    await fx.snds({ ip: ip(6), day: day(7), recipients: 5000, filter: 'RED', traps: 4 });
    await fx.complaint({ ip: ip(6), day: day(10), incidents: 30 });
    // .1 had complaints long ago: outside the window they do not count.
    await fx.complaint({ ip: ip(1), day: day(8), incidents: 50 });
    // An older IP Status download blocked .1; the download of D supersedes it.
    await fx.status(`${day(5)}T06:00:00Z`, [[ip(1), ip(1)]]);
    // .16: data 27 days before D keeps it in the decisions (no_data); .17 at 28 days does not.
    await fx.snds({ ip: ip(16), day: day(27) });
    await fx.snds({ ip: ip(17), day: day(28) });
  }
  if (!recent) return;

  await week(fx, plain(1)); // ok
  // .2: 7 complaints on 7,000 recipients = exactly complaintRateWarn → at_risk.
  await week(fx, plain(2));
  await fx.complaint({ ip: ip(2), day: day(0), incidents: 4 });
  await fx.complaint({ ip: ip(2), day: day(6), incidents: 3 });
  await fx.complaint({ ip: ip(2), day: day(3), incidents: 9, isComplaint: false }); // not-spam: never counted
  // .3: one trap hit on the first day of the window.
  await week(fx, (b) => ({ ip: ip(3), day: day(b), traps: b === 6 ? 1 : 0 }));
  // .4: RED on D itself, the last day of the window.
  await week(fx, (b) => ({ ip: ip(4), day: day(b), filter: b === 0 ? 'RED' : 'GREEN' }));
  // .5: one YELLOW day.
  await week(fx, (b) => ({ ip: ip(5), day: day(b), filter: b === 3 ? 'YELLOW' : 'GREEN' }));
  // .7 .8 .9 lie in a blocked range of the download of D (.7 and .9 at its ends, .8 inside).
  await week(fx, plain(7)); // start_delisting
  await week(fx, plain(8)); // 21 / 7,000 = exactly complaintRateMax → fix_first
  await fx.complaint({ ip: ip(8), day: day(2), incidents: 21 });
  await week(fx, (b) => ({ ip: ip(9), day: day(b), traps: b === 1 ? 2 : 0, filter: b === 1 ? 'RED' : 'GREEN' }));
  // .10: bounce blocks with two Microsoft 365 routes and a deferral → start_delisting, office365_portal.
  await week(fx, plain(10));
  await fx.evidence({ ip: ip(10), day: day(1), kind: 'block', route: 'delist_email' });
  await fx.evidence({ ip: ip(10), day: day(2), kind: 'block', route: 'office365_portal' });
  await fx.evidence({ ip: ip(10), day: day(2), kind: 'warning', reason: 'reputation_deferral' });
  // .11: S3140 bounce plus 5.7.515 → fix_first (auth first).
  await week(fx, plain(11));
  await fx.evidence({ ip: ip(11), day: day(6), kind: 'block', route: 'outlook_form' });
  await fx.evidence({ ip: ip(11), day: day(0), kind: 'warning', reason: 'auth_requirements' });
  // .12: a deferral only → at_risk; an older block (before W) does not count.
  await week(fx, plain(12));
  await fx.evidence({ ip: ip(12), day: day(4), kind: 'warning', reason: 'reputation_deferral' });
  await fx.evidence({ ip: ip(12), day: day(7), kind: 'block', route: 'outlook_form' });
  // .13: listed on a DNSBL → at_risk.
  await week(fx, plain(13));
  await fx.evidence({ ip: ip(13), day: day(0), kind: 'warning', reason: 'dnsbl_listed' });
  // .14: blocked only by a download made after D → ok for D.
  await week(fx, plain(14));
  // .15: complaints without SNDS rows → rate null (unknown, not zero): at_risk, complaints_without_volume.
  await fx.complaint({ ip: ip(15), day: day(1), incidents: 2 });
  // .18: blocked, with complaints and no SNDS rows → fix_first, never start_delisting.
  await fx.complaint({ ip: ip(18), day: day(2), incidents: 15 });

  await fx.status(`${day(0)}T23:59:59Z`, [[ip(7), ip(9)], [ip(18), ip(18)], ['198.51.100.200', '198.51.100.201', false]]);
  await fx.status(`${day(-1)}T00:00:00Z`, [[ip(14), ip(14)]]);
}

/** What `repwatch flags --as-of 2026-11-20 --format json` must print for the dataset. */
export const EXPECTED_FLAGS = [
  { ip: ip(7), status: 'start_delisting', reasons: [], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: true, route: 'outlook_form' },
  { ip: ip(10), status: 'start_delisting', reasons: ['reputation_deferral'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: true, route: 'office365_portal' },
  { ip: ip(8), status: 'fix_first', reasons: ['complaint_rate'], recipients7d: 7000, complaints7d: 21, complaintRate7d: 0.003, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: true, route: 'outlook_form' },
  { ip: ip(9), status: 'fix_first', reasons: ['trap_hits', 'red_filter'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 2, redDays7d: 1, yellowDays7d: 0, blocked: true, route: 'outlook_form' },
  { ip: ip(11), status: 'fix_first', reasons: ['auth_requirements'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: true, route: 'outlook_form' },
  { ip: ip(18), status: 'fix_first', reasons: ['complaints_without_volume'], recipients7d: 0, complaints7d: 15, complaintRate7d: null, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: true, route: 'outlook_form' },
  { ip: ip(2), status: 'at_risk', reasons: ['complaint_rate'], recipients7d: 7000, complaints7d: 7, complaintRate7d: 0.001, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(3), status: 'at_risk', reasons: ['trap_hits'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 1, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(4), status: 'at_risk', reasons: ['red_filter'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 1, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(5), status: 'at_risk', reasons: ['yellow_filter'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 1, blocked: false, route: null },
  { ip: ip(12), status: 'at_risk', reasons: ['reputation_deferral'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(13), status: 'at_risk', reasons: ['dnsbl_listed'], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(15), status: 'at_risk', reasons: ['complaints_without_volume'], recipients7d: 0, complaints7d: 2, complaintRate7d: null, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(1), status: 'ok', reasons: [], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(14), status: 'ok', reasons: [], recipients7d: 7000, complaints7d: 0, complaintRate7d: 0, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(6), status: 'no_data', reasons: [], recipients7d: 0, complaints7d: 0, complaintRate7d: null, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
  { ip: ip(16), status: 'no_data', reasons: [], recipients7d: 0, complaints7d: 0, complaintRate7d: null, trapHits7d: 0, redDays7d: 0, yellowDays7d: 0, blocked: false, route: null },
];
