import type { Database } from '../db/connection.js';
import type { Config } from '../config/schema.js';
import { linkExpiry, linkFixAdvice } from '../ingest/snds/link-expiry.js';
import { buildDelistDrafts, type RouteDraft } from '../delisting/drafts.js';
import { FIXES, PLAYBOOK } from '../delisting/playbook.js';
import type { Route } from '../ingest/bounces/microsoft-codes.js';
import type { DecisionItem, Playbook, WeeklyReportData } from './weekly-data.js';

/**
 * The report's use of helpers owned by other modules: delisting playbooks and the pre-filled requests
 * of `delist draft`, what to fix, SNDS link expiry. Kept in one file so the report shows exactly what
 * those commands say, and so a change there is a change here only.
 */

/** IPs that get the full pre-filled request in the report (each draft reads the bounces and
 * complaints of that IP); the others get the playbook and the command that prints their draft. */
export const MAX_DRAFTS = 10;

function isRoute(value: string | null): value is Route {
  return value !== null && value in PLAYBOOK;
}

/** The route's steps without the IP-specific request (fix_first IPs, and beyond MAX_DRAFTS). */
export function staticPlaybook(route: string | null): Playbook | undefined {
  if (!isRoute(route)) return undefined;
  const p = PLAYBOOK[route];
  return { route, title: p.title, target: p.where, steps: p.steps, request: [] };
}

/** The playbooks of a start_delisting IP with the request `delist draft` pre-fills, one per route. */
export async function draftedPlaybooks(database: Database, config: Config, item: DecisionItem, asOf: string): Promise<{ playbooks: Playbook[]; note: string | null }> {
  const result = await buildDelistDrafts(database, config, item.ip, asOf);
  if (result.refused) {
    const fallback = staticPlaybook(item.route);
    return { playbooks: fallback ? [fallback] : [], note: result.refused.why };
  }
  return { playbooks: result.drafts.map(toPlaybook), note: result.caveats.length ? `Check first: ${result.caveats.join(' ')}` : null };
}

function toPlaybook(draft: RouteDraft): Playbook {
  const request: Playbook['request'] = [];
  for (const f of draft.fields ?? []) request.push({ label: f.field, value: f.value, source: f.source });
  for (const v of draft.visits ?? []) request.push({ label: 'Portal visit', value: `IP ${v.ip} with e-mail ${v.email}`, source: 'one IP per visit' });
  if (draft.route === 'delist_email') {
    request.push({
      label: 'Attach',
      value: draft.attach ? `stored NDR #${draft.attach.messageRef} ${draft.attach.messageId ?? ''}`.trim() : 'no stored 5.7.511 NDR for this IP: forward one from the MTA logs',
      source: 'bounces',
    });
  }
  if (draft.errorText && !draft.fields) request.push({ label: 'Error seen', value: draft.errorText, source: 'latest NDR' });
  return { route: draft.route, title: draft.title, target: draft.where, steps: draft.steps, request };
}

/** What must be fixed before a delisting request for a fix_first IP can succeed. */
export function toFixFor(item: DecisionItem): string[] {
  return item.reasons.map((r) => FIXES[r] ?? r);
}

/**
 * Days left of each SNDS automated-access link, with the same rule and advice as the ingest uses.
 * `today` is the run's clock day (as in `status` and `snds links`), never the report's as-of date: a
 * report for an earlier week must still warn about the link as it stands when the report is generated.
 */
export function linkStates(config: Config, today: string): WeeklyReportData['sndsLinks'] {
  return config.snds.feeds.map((feed) => {
    const expiry = linkExpiry(feed, today, config.snds.linkLifetimeDays, config.snds.linkWarnDays);
    return {
      feed: feed.name,
      createdOn: feed.linkCreatedOn ?? null,
      expiresOn: expiry.expiresOn,
      daysLeft: expiry.daysLeft,
      state: expiry.state,
      advice: expiry.state === 'ok' ? null : expiry.state === 'unknown' ? `set snds.feeds[name=${feed.name}].linkCreatedOn to the day the link was created` : linkFixAdvice(feed.name),
    };
  });
}
