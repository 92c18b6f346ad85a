/** What the weekly report holds, as plain data: the JSON output is exactly this object, and every
 * renderer (HTML, Markdown, CSV, email) reads only this. */

import type { Decision } from '../transform/decisions.js';

export const ACTION_STATUSES = ['start_delisting', 'fix_first', 'at_risk'] as const;
export type ActionStatus = (typeof ACTION_STATUSES)[number];
export const ALL_STATUSES = ['start_delisting', 'fix_first', 'at_risk', 'ok', 'no_data'] as const;
export type DecisionStatus = (typeof ALL_STATUSES)[number];

/** Rows of one decision status shown in the HTML; the CSV and JSON hold every row. */
export const HTML_ROWS_PER_STATUS = 200;

export interface Totals {
  recipients: number;
  complaints: number;
  /** Complaints from IPs without SNDS volume in the period: counted, but not in the rate (their
   * volume is unknown: under SNDS's display threshold, or outside the SNDS profile). */
  complaintsWithoutVolume: number;
  /** (complaints - complaintsWithoutVolume) / recipients. */
  complaintRate: number | null;
  trapHits: number;
  ips: number;
}

export interface Playbook {
  route: string;
  title: string;
  steps: string[];
  /** The pre-filled request of `delist draft` (form fields, portal visits, NDR to attach); empty when
   * the request is not drafted here (fix_first, or beyond the drafted IPs). */
  request: { label: string; value: string; source?: string }[];
  /** Where the request goes (a form, a portal, an address). */
  target: string;
}

/** A decision as the report shows it: the figures of transform/decisions.ts plus what the report adds. */
export interface DecisionItem
  extends Pick<Decision, 'ip' | 'status' | 'reasons' | 'recipients7d' | 'complaints7d' | 'complaintRate7d' | 'trapHits7d' | 'blocked' | 'route'> {
  /** Blocked IPs: one playbook per delisting route that applies. */
  playbooks?: Playbook[];
  /** Why there is no pre-filled request, when there is none. */
  draftNote?: string;
  /** Daily complaint rate over the 28 days ending with the as-of date (null: no volume that day), for
   * the sparkline of the IPs the HTML shows. */
  rate28d?: (number | null)[];
  /** For fix_first: what must be fixed before a delisting request can succeed. */
  toFix?: string[];
}

export interface SeriesDay {
  day: string;
  recipients: number | null;
  complaints: number;
  complaintRate: number | null;
  trapHits: number | null;
  filterResult: string | null;
}

export interface IpChart {
  ip: string;
  why: 'needs_action' | 'top_volume';
  status: DecisionStatus | null;
  days: SeriesDay[];
}

export interface PoolTrend {
  pool: string;
  cidrs: string[];
  days: SeriesDay[];
}

export interface WeeklyReportData {
  generatedAt: string;
  period: { week: string | null; from: string; to: string; previousFrom: string; previousTo: string; isoWeek: boolean };
  thresholds: { complaintRateWarn: number; complaintRateMax: number; windowDays: number; bulkSenderDailyVolume: number };
  headline: {
    current: Totals;
    previous: Totals;
    statusCounts: Record<DecisionStatus, number>;
    previousStatusCounts: Record<DecisionStatus, number>;
  };
  decisions: {
    /** Where the decisions came from: the stored ip_flag rows of the as-of date, or none stored. */
    source: string;
    items: DecisionItem[];
  };
  charts: { note: string; ipDays: number; ips: IpChart[]; poolDays: number; pools: PoolTrend[] };
  trapHits: { total: number; ips: { ip: string; hits: number; days: number; lastDay: string }[] };
  blockList: { fetchedAt: string | null; total: number; ranges: { firstIp: string; lastIp: string; details: string | null; fetchedAt: string }[] };
  topCampaigns: { campaign: string | null; complaints: number; ips: number; exampleSubject: string | null }[];
  topFromDomains: { domain: string | null; complaints: number; ips: number }[];
  sndsLinks: { feed: string; createdOn: string | null; expiresOn: string | null; daysLeft: number | null; state: 'ok' | 'warn' | 'expired' | 'unknown'; advice: string | null }[];
  freshness: {
    sources: { job: string; lastSuccess: string | null; lastStatus: string; lastStarted: string; lastDetail: string | null }[];
    daysWithoutData: string[];
    /** Days of the period a reporting SNDS feed has no data for, though another feed may have them. */
    feedGaps: { feed: string; days: string[] }[];
  };
  rejections: { total: number; groups: { source: string; reason: string; count: number; lastLocation: string }[] };
  quarantined: { total: number; groups: { mailbox: string; reason: string; count: number }[] };
  /** The rest of the delisting workflow: requests in progress, other blocklists, bulk-sender authentication. */
  delisting: {
    cases: { id: number; target: string; route: string; state: string; openedAt: string; stateChangedAt: string; messages: number; lastMessage: string | null }[];
    blocklists: { checkedAt: string | null; cleanPairs: number; listings: { ip: string; zone: string; outcome: string; answer: string; meaning: string | null; listedSince: string | null; isNew: boolean }[] };
    auth: { domain: string; spf: string; dkim: string; dmarc: string; dmarcPolicy: string | null; dailyVolume: number | null; meetsRequirement: boolean; flagged: boolean; problems: string[] }[];
  };
  /** The sending domains the configuration names (`auth.domains`): ours, so shown as they are where a
   * domain from a complaint report is shown defanged. */
  ownDomains: string[];
  notes: string[];
}

export function emptyStatusCounts(): Record<DecisionStatus, number> {
  return { start_delisting: 0, fix_first: 0, at_risk: 0, ok: 0, no_data: 0 };
}
