import { describe, expect, it } from 'vitest';
import { decide, orderRoutes, statusDetailWarnings, type WindowSums } from '../../transform/decide.js';

const thresholds = { complaintRateWarn: 0.001, complaintRateMax: 0.003 };

function sums(overrides: Partial<WindowSums> = {}): WindowSums {
  return {
    hasData: true, recipients: 1000, complaints: 0, trapHits: 0, redDays: 0, yellowDays: 0,
    statusBlocked: false, evidenceBlocked: false, blockRoutes: [], warnings: [], ...overrides,
  };
}

describe('decide: not blocked', () => {
  it('is ok with clean numbers', () => {
    expect(decide(sums(), thresholds)).toEqual({ status: 'ok', reasons: [], complaintRate: 0, blocked: false, route: null, routes: [] });
  });

  it('flags complaint_rate exactly at complaintRateWarn, not just below', () => {
    expect(decide(sums({ complaints: 1, recipients: 1000 }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['complaint_rate'], complaintRate: 0.001 });
    expect(decide(sums({ complaints: 10, recipients: 10_000 }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['complaint_rate'] });
    expect(decide(sums({ complaints: 9, recipients: 10_000 }), thresholds)).toMatchObject({ status: 'ok', reasons: [] });
    expect(decide(sums({ complaints: 1, recipients: 1001 }), thresholds)).toMatchObject({ status: 'ok' });
  });

  it('has a null rate and no complaint_rate reason when there were no recipients; complaints then are complaints_without_volume', () => {
    const outcome = decide(sums({ recipients: 0, complaints: 5 }), thresholds);
    expect(outcome.complaintRate).toBeNull();
    expect(outcome).toMatchObject({ status: 'at_risk', reasons: ['complaints_without_volume'] });
    // One complaint is enough: the rate is unknown, not zero. No complaints and no volume is nothing.
    expect(decide(sums({ recipients: 0, complaints: 1 }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['complaints_without_volume'] });
    expect(decide(sums({ recipients: 0, complaints: 0 }), thresholds)).toMatchObject({ status: 'ok', reasons: [], complaintRate: null });
    // With any volume the rate rules decide, however few recipients.
    expect(decide(sums({ recipients: 1, complaints: 0 }), thresholds)).toMatchObject({ status: 'ok', reasons: [] });
  });

  it('flags any trap hit, any RED day and any YELLOW day, with every reason that holds', () => {
    expect(decide(sums({ trapHits: 1 }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['trap_hits'] });
    expect(decide(sums({ redDays: 1 }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['red_filter'] });
    expect(decide(sums({ yellowDays: 1 }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['yellow_filter'] });
    expect(decide(sums({ complaints: 3, trapHits: 2, redDays: 1, yellowDays: 3 }), thresholds).reasons).toEqual([
      'complaint_rate', 'trap_hits', 'red_filter', 'yellow_filter',
    ]);
  });

  it('is no_data without SNDS rows, complaints, block or warning in the window', () => {
    expect(decide(sums({ hasData: false, recipients: 0 }), thresholds)).toEqual({
      status: 'no_data', reasons: [], complaintRate: null, blocked: false, route: null, routes: [],
    });
  });

  it('turns any warning into at_risk with its reason, even without SNDS data', () => {
    expect(decide(sums({ warnings: ['reputation_deferral'] }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['reputation_deferral'] });
    expect(decide(sums({ hasData: false, recipients: 0, warnings: ['dnsbl_listed'] }), thresholds)).toMatchObject({ status: 'at_risk', reasons: ['dnsbl_listed'] });
    expect(decide(sums({ yellowDays: 1, warnings: ['relisted', 'auth_requirements', 'relisted', 'zz_custom'] }), thresholds).reasons).toEqual([
      'yellow_filter', 'auth_requirements', 'relisted', 'zz_custom',
    ]);
  });
});

describe('decide: blocked', () => {
  const blocked = { statusBlocked: true };

  it('is start_delisting with route outlook_form for a clean IP on the IP Status list', () => {
    expect(decide(sums(blocked), thresholds)).toEqual({
      status: 'start_delisting', reasons: [], complaintRate: 0, blocked: true, route: 'outlook_form', routes: ['outlook_form'],
    });
  });

  it('is fix_first exactly at complaintRateMax, start_delisting just below (the warn level does not count)', () => {
    expect(decide(sums({ ...blocked, complaints: 3, recipients: 1000 }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['complaint_rate'] });
    expect(decide(sums({ ...blocked, complaints: 30, recipients: 10_000 }), thresholds)).toMatchObject({ status: 'fix_first' });
    expect(decide(sums({ ...blocked, complaints: 29, recipients: 10_000 }), thresholds)).toMatchObject({ status: 'start_delisting', reasons: [] });
    expect(decide(sums({ ...blocked, complaints: 2, recipients: 1000 }), thresholds)).toMatchObject({ status: 'start_delisting', reasons: [] });
  });

  it('is fix_first for trap hits or a RED day, listing every reason; YELLOW days do not matter once blocked', () => {
    expect(decide(sums({ ...blocked, trapHits: 1 }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['trap_hits'] });
    expect(decide(sums({ ...blocked, redDays: 1 }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['red_filter'] });
    expect(decide(sums({ ...blocked, yellowDays: 7 }), thresholds)).toMatchObject({ status: 'start_delisting', reasons: [] });
    expect(decide(sums({ ...blocked, complaints: 50, trapHits: 3, redDays: 2, yellowDays: 1 }), thresholds)).toMatchObject({
      status: 'fix_first', reasons: ['complaint_rate', 'trap_hits', 'red_filter'], route: 'outlook_form',
    });
  });

  it('a blocked IP with complaints but no SNDS volume in the window is fix_first, never start_delisting', () => {
    expect(decide(sums({ ...blocked, recipients: 0, complaints: 15 }), thresholds)).toMatchObject({
      status: 'fix_first', reasons: ['complaints_without_volume'], complaintRate: null, blocked: true,
    });
    expect(decide(sums({ ...blocked, recipients: 0, complaints: 2, trapHits: 1 }), thresholds).reasons).toEqual(['complaints_without_volume', 'trap_hits']);
  });

  it('stays blocked with a null rate and no data: blocked is never no_data', () => {
    expect(decide(sums({ ...blocked, hasData: false, recipients: 0, complaints: 0 }), thresholds)).toMatchObject({
      status: 'start_delisting', complaintRate: null, blocked: true,
    });
  });

  it('takes routes from block evidence, listing each once and picking the first by the fixed order', () => {
    expect(decide(sums({ evidenceBlocked: true, blockRoutes: ['delist_email', 'office365_portal'] }), thresholds)).toMatchObject({
      status: 'start_delisting', blocked: true, route: 'office365_portal', routes: ['office365_portal', 'delist_email'],
    });
    expect(decide(sums({ statusBlocked: true, evidenceBlocked: true, blockRoutes: ['delist_email', 'outlook_form'] }), thresholds)).toMatchObject({
      route: 'outlook_form', routes: ['outlook_form', 'delist_email'],
    });
    const noRoute = decide(sums({ evidenceBlocked: true }), thresholds);
    expect(noRoute).toMatchObject({ status: 'start_delisting', blocked: true, route: null, routes: [] });
  });

  it('is fix_first for auth_requirements or dnsbl_listed; lists reputation_deferral and relisted without changing the status', () => {
    expect(decide(sums({ ...blocked, warnings: ['auth_requirements'] }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['auth_requirements'] });
    expect(decide(sums({ ...blocked, warnings: ['dnsbl_listed'] }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['dnsbl_listed'] });
    expect(decide(sums({ ...blocked, warnings: ['relisted', 'reputation_deferral'] }), thresholds)).toMatchObject({
      status: 'start_delisting', reasons: ['reputation_deferral', 'relisted'],
    });
    expect(decide(sums({ ...blocked, trapHits: 1, warnings: ['relisted'] }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['trap_hits', 'relisted'] });
  });
});

describe('orderRoutes', () => {
  it('orders known routes outlook_form, office365_portal, delist_email, then others by name, each once', () => {
    expect(orderRoutes(['zeta', 'delist_email', 'alpha', 'outlook_form', 'delist_email', 'office365_portal'])).toEqual([
      'outlook_form', 'office365_portal', 'delist_email', 'alpha', 'zeta',
    ]);
  });
});

describe('decide: the IP Status block\'s Details', () => {
  it('maps the known texts: another list is dnsbl_listed, harvesting address_harvesting, the usual text nothing', () => {
    expect(statusDetailWarnings(['SpamHaus SBL/XBL'])).toEqual(['dnsbl_listed']);
    expect(statusDetailWarnings(['Symantec Brightmail'])).toEqual(['dnsbl_listed']);
    expect(statusDetailWarnings(['E-mail address harvesting'])).toEqual(['address_harvesting']);
    expect(statusDetailWarnings(['Blocked due to user complaints or other evidence of spamming', ''])).toEqual([]);
  });

  it('makes a status block fix_first; counts only for an IP the status list blocks', () => {
    expect(decide(sums({ statusBlocked: true, statusDetails: ['SpamHaus SBL/XBL'] }), thresholds)).toMatchObject({ status: 'fix_first', reasons: ['dnsbl_listed'], route: 'outlook_form' });
    expect(decide(sums({ statusBlocked: true, statusDetails: ['Blocked due to user complaints or other evidence of spamming'] }), thresholds)).toMatchObject({ status: 'start_delisting', reasons: [] });
    expect(decide(sums({ statusDetails: ['SpamHaus SBL/XBL'] }), thresholds)).toMatchObject({ status: 'ok', reasons: [] });
  });
});
