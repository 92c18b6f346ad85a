/**
 * The delisting decision for one IP and one as-of date, from the sums over its decision window.
 * Pure: SQL does the summing for every IP at once (transform/decisions.ts); this function is the
 * whole rule book, in one place, so it reads like issue 5 and issue 8 and is tested at every boundary.
 */

export const STATUSES = ['start_delisting', 'fix_first', 'at_risk', 'ok', 'no_data'] as const;
/** Most urgent first: the order of the flags table. */
export type DecisionStatus = (typeof STATUSES)[number];

/** Delisting routes, in the order that picks `route` when several apply. */
export const ROUTES = ['outlook_form', 'office365_portal', 'delist_email'] as const;
export type Route = (typeof ROUTES)[number];

/** Reasons from the window's numbers. */
export const METRIC_REASONS = ['complaint_rate', 'complaints_without_volume', 'trap_hits', 'red_filter', 'yellow_filter'] as const;
/** Warning reasons from block evidence that we know the meaning of (others are listed as they come). */
export const WARNING_REASONS = ['auth_requirements', 'dnsbl_listed', 'address_harvesting', 'reputation_deferral', 'relisted'] as const;
/** Warnings that must be fixed before asking Microsoft to delist (the seed article: meet the
 * authentication rules and get off other blocklists first; a block for harvesting stays until it stops). */
const FIX_FIRST_WARNINGS: ReadonlySet<string> = new Set(['auth_requirements', 'dnsbl_listed', 'address_harvesting']);

/**
 * What an SNDS IP Status block's Details text says about its cause (snds.md lists the known texts):
 * a block because of another list (Spamhaus SBL/XBL, Symantec Brightmail) is lifted by getting off that
 * list first; `E-mail address harvesting` by stopping it. `Blocked due to user complaints or other
 * evidence of spamming`, the usual text, adds nothing: the metrics say whether it is fixed.
 */
export function statusDetailWarnings(details: readonly string[]): string[] {
  const warnings: string[] = [];
  for (const detail of details) {
    if (/spamhaus|\b[sx]bl\b|brightmail|symantec/i.test(detail)) warnings.push('dnsbl_listed');
    if (/harvest/i.test(detail)) warnings.push('address_harvesting');
  }
  return warnings;
}
/** A warning row that names no reason still counts; it is reported under this name. */
export const UNNAMED_WARNING = 'warning';

export interface DecisionThresholds {
  complaintRateWarn: number;
  complaintRateMax: number;
}

/** What SQL sums for one IP over the window W (the windowDays days ending with the as-of date). */
export interface WindowSums {
  /** Any SNDS row or complaint of the IP in W. */
  hasData: boolean;
  recipients: number;
  complaints: number;
  trapHits: number;
  /** Days in W with a RED (YELLOW) SNDS row. */
  redDays: number;
  yellowDays: number;
  /** Inside a blocked range of the latest IP Status download made on or before the as-of date. */
  statusBlocked: boolean;
  /** The Details texts of those blocked ranges (statusDetailWarnings reads them). */
  statusDetails?: readonly string[];
  /** Routes of `kind = 'block'` evidence in W (unknown routes are kept, after the known ones). */
  blockRoutes: readonly string[];
  /** True when W has `kind = 'block'` evidence, even evidence that names no route. */
  evidenceBlocked: boolean;
  /** Reasons of `kind = 'warning'` evidence in W. */
  warnings: readonly string[];
}

export interface DecisionOutcome {
  status: DecisionStatus;
  reasons: string[];
  complaintRate: number | null;
  blocked: boolean;
  /** The first of `routes` by the order of ROUTES; null when not blocked. */
  route: string | null;
  routes: string[];
}

export function decide(sums: WindowSums, thresholds: DecisionThresholds): DecisionOutcome {
  const complaintRate = sums.recipients > 0 ? sums.complaints / sums.recipients : null;
  const routes = orderRoutes([...(sums.statusBlocked ? ['outlook_form'] : []), ...sums.blockRoutes]);
  const blocked = sums.statusBlocked || sums.evidenceBlocked || routes.length > 0;
  const warnings = orderWarnings([...sums.warnings, ...(sums.statusBlocked ? statusDetailWarnings(sums.statusDetails ?? []) : [])]);

  if (!blocked && !sums.hasData && warnings.length === 0) {
    return { status: 'no_data', reasons: [], complaintRate, blocked, route: null, routes: [] };
  }

  // Complaints in W while SNDS shows no mail from the IP: the rate is unknown, not zero (SNDS days not
  // loaded yet, or volume under what SNDS reports). Issue 5's rate rules cannot fire on a null rate, and
  // a blocked IP with complaints is not clean: its own reason, as strong as complaint_rate.
  const unknownRate = complaintRate === null && sums.complaints > 0 ? ['complaints_without_volume'] : [];

  if (blocked) {
    const metric = [
      ...(complaintRate !== null && complaintRate >= thresholds.complaintRateMax ? ['complaint_rate'] : []),
      ...unknownRate,
      ...(sums.trapHits > 0 ? ['trap_hits'] : []),
      ...(sums.redDays > 0 ? ['red_filter'] : []),
    ];
    const mustFix = metric.length > 0 || warnings.some((w) => FIX_FIRST_WARNINGS.has(w));
    return {
      status: mustFix ? 'fix_first' : 'start_delisting',
      reasons: [...metric, ...warnings],
      complaintRate,
      blocked,
      route: routes[0] ?? null,
      routes,
    };
  }

  const metric = [
    ...(complaintRate !== null && complaintRate >= thresholds.complaintRateWarn ? ['complaint_rate'] : []),
    ...unknownRate,
    ...(sums.trapHits > 0 ? ['trap_hits'] : []),
    ...(sums.redDays > 0 ? ['red_filter'] : []),
    ...(sums.yellowDays > 0 ? ['yellow_filter'] : []),
  ];
  const reasons = [...metric, ...warnings];
  return { status: reasons.length > 0 ? 'at_risk' : 'ok', reasons, complaintRate, blocked, route: null, routes: [] };
}

/** Known routes in their fixed order, then any other route by name; each once. */
export function orderRoutes(routes: readonly string[]): string[] {
  return orderBy(routes, ROUTES);
}

/** Known warning reasons in their fixed order, then any others by name; each once. */
function orderWarnings(warnings: readonly string[]): string[] {
  return orderBy(warnings, WARNING_REASONS);
}

function orderBy(values: readonly string[], known: readonly string[]): string[] {
  if (values.length <= 1) return [...values]; // the common case, 10,000 times per decision date
  const unique = [...new Set(values)];
  const rank = (v: string) => (known.includes(v) ? known.indexOf(v) : known.length);
  return unique.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Sort key for tables and lists: status urgency, then the order the caller had (IP order). */
export function urgency(status: DecisionStatus): number {
  return STATUSES.indexOf(status);
}
