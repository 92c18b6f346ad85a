/** Number formats shared by the HTML, Markdown and e-mail renderings, so they read the same. */
import { percentDigits } from '../lib/percent.js';

export function fmtInt(value: number | null | undefined): string {
  if (value === null || value === undefined) return '–';
  return Math.round(value).toLocaleString('en-US');
}

export function fmtRate(value: number | null | undefined): string {
  if (value === null || value === undefined) return '–';
  return `${percentDigits(value)}%`;
}

/** Change against the previous period, as a signed percentage (or "new" when there was nothing). */
export function fmtChange(current: number | null, previous: number | null): string {
  if (current === null || previous === null) return '';
  if (previous === 0) return current === 0 ? '±0%' : 'new';
  const change = ((current - previous) / previous) * 100;
  return `${change >= 0 ? '+' : ''}${change.toFixed(1)}%`;
}

export const STATUS_LABELS: Record<string, string> = {
  start_delisting: 'Start delisting',
  fix_first: 'Fix first',
  at_risk: 'At risk',
  ok: 'OK',
  no_data: 'No data',
};

export const REASON_LABELS: Record<string, string> = {
  complaint_rate: 'complaint rate',
  complaints_without_volume: 'complaints without SNDS volume',
  trap_hits: 'trap hits',
  red_filter: 'RED filter days',
  yellow_filter: 'YELLOW filter days',
  auth_requirements: 'fails Outlook.com authentication requirements (5.7.515)',
  dnsbl_listed: 'listed on a DNS blocklist',
  address_harvesting: 'address harvesting',
  reputation_deferral: 'deferred for reputation (4.7.650 or RP/SC/DY/OU codes)',
  relisted: 'blocked again after a delisting',
};

export function fmtReasons(reasons: string[]): string {
  return reasons.map((r) => REASON_LABELS[r] ?? r).join(', ');
}

/** The routes a decision item shows: those of its playbooks, in the order its drafts take them (the
 * forwarded 5.7.511 NDR before the portal), else the decision's `route`. */
export function routesShown(d: { route: string | null; playbooks?: { route: string }[] }): string {
  return d.playbooks?.length ? d.playbooks.map((p) => p.route).join(', ') : (d.route ?? '');
}
