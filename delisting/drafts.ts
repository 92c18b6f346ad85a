import { canonicalIp } from '../checks/ip-address.js';
import type { Config } from '../config/schema.js';
import type { Database } from '../db/connection.js';
import { blockedByStatusAsOf, configuredSndsFeeds, coverageForFeeds, defaultDecisionDate, ensureCurrentDecisions, feedGapText, latestStatusDownloadDay, loadDecisions, sndsWindowCoverage, type Decision } from '../transform/decisions.js';
import { ROUTE_ORDER, type Route } from '../ingest/bounces/microsoft-codes.js';
import { collapseToCidrs } from './collapse-cidr.js';
import { listCases, type DelistCase } from './cases.js';
import { FIXES, PLAYBOOK } from './playbook.js';

/**
 * `repwatch delist draft`: for a blocked IP, exactly what the person must send or do on each route that
 * applies, filled in from what the database knows (bounces, complaints, SNDS IP Status, cases).
 * Refused for a fix_first IP: a request made before the cause is fixed is refused and makes the next
 * one harder; the refusal says what to fix.
 */

export interface DraftContact {
  name?: string;
  email?: string;
  company?: string;
  serverType?: string;
}

export interface FormField {
  field: string;
  value: string;
  /** Where the value came from (or "placeholder: fill in"). */
  source: string;
}

export interface RouteDraft {
  route: Route;
  title: string;
  where: string;
  steps: string[];
  /** outlook_form: the form, field by field. */
  fields?: FormField[];
  /** office365_portal: one visit per IP. */
  visits?: { ip: string; email: string }[];
  /** delist_email: the stored NDR to forward. */
  attach?: { messageRef: number; messageId: string | null; bouncedAt: Date | null; diagnostic: string | null } | null;
  /** The full error text seen (the latest NDR for this route), or null. */
  errorText: string | null;
}

export interface DelistDraftResult {
  ip: string;
  asOf: string;
  decision: Decision | null;
  /** Set when no draft is given: fix_first (with what to fix), not blocked, or unknown IP. */
  refused: { why: string; reasons: string[]; fixes: string[] } | null;
  /** What to check before sending a draft (days of the window without any SNDS data). */
  caveats: string[];
  drafts: RouteDraft[];
  cases: DelistCase[];
}

/**
 * The as-of date a draft uses by default: the same as `repwatch flags` (defaultDecisionDate: the latest
 * SNDS day, or the day of a newer IP Status download within the window, since a request is about the
 * block list of now). Without SNDS data (bounce evidence alone) the latest computed decisions, never
 * later than today; else today.
 */
export async function defaultAsOf(database: Database, today: string, windowDays: number): Promise<string> {
  const date = await defaultDecisionDate(database, today, windowDays);
  if (date) return date;
  const rows = await database.query<{ as_of: string | null }>('select max(as_of)::text as as_of from repwatch.ip_flag where as_of <= $1::date', [today]);
  return rows[0]?.as_of ?? today;
}

export async function buildDelistDrafts(database: Database, config: Config, ip: string, asOf: string, contact: DraftContact = {}): Promise<DelistDraftResult> {
  const address = canonicalIp(ip);
  if (!address) throw new Error(`not an IP address: ${ip}`);
  // Decisions made with this config's thresholds, as the weekly report shows them.
  await ensureCurrentDecisions(database, config, asOf);
  const decisions = await loadDecisions(database, asOf);
  const decision = decisions.find((d) => d.ip === address) ?? null;
  const cases = await listCases(database, { ip: address });
  const base = { ip: address, asOf, decision, cases, caveats: [] as string[] };

  if (!decision) {
    return { ...base, drafts: [], refused: { why: `no decision for ${address} as of ${asOf}: no SNDS data, complaints or block evidence in the window`, reasons: [], fixes: [] } };
  }
  if (decision.status === 'fix_first') {
    return {
      ...base,
      drafts: [],
      refused: {
        why: `${address} is fix_first as of ${asOf}: a delisting request now would be refused. Fix these first, then draft again.`,
        reasons: decision.reasons,
        fixes: decision.reasons.map((r) => `${r}: ${FIXES[r] ?? 'see the decision reasons in repwatch flags'}`),
      },
    };
  }
  if (!decision.blocked) {
    return { ...base, drafts: [], refused: { why: `${address} is not blocked as of ${asOf} (status ${decision.status}): there is nothing to delist`, reasons: decision.reasons, fixes: decision.reasons.map((r) => `${r}: ${FIXES[r] ?? ''}`) } };
  }

  let routes = (decision.routes.length > 0 ? decision.routes : [decision.route ?? 'outlook_form']).filter((r): r is Route => (ROUTE_ORDER as readonly string[]).includes(r));
  // `route` names the portal first (issue 8's order), but the seed is plain: with a 5.7.511 NDR the
  // portal cannot be used. The forwarded NDR comes first, and the portal draft says why it may be refused.
  const banned = routes.includes('delist_email') && routes.includes('office365_portal');
  if (banned) routes = [...routes.filter((r) => r === 'delist_email'), ...routes.filter((r) => r !== 'delist_email')];
  const drafts: RouteDraft[] = [];
  for (const route of routes) {
    const latest = await latestBounce(database, address, route, asOf);
    if (route === 'outlook_form') drafts.push(await outlookForm(database, config, decision, decisions, latest, contact, asOf));
    else if (route === 'office365_portal') {
      drafts.push({
        route,
        title: PLAYBOOK.office365_portal.title,
        where: PLAYBOOK.office365_portal.where,
        steps: banned
          ? [
              `Not while 5.7.511 applies: this IP also bounced with 5.7.511 (banned sender) in the window, and Microsoft does not take portal requests for a banned sender. Forward that NDR first (above); come back here only for a 5.7.6xx block that remains after it is lifted.`,
              ...PLAYBOOK.office365_portal.steps,
            ]
          : PLAYBOOK.office365_portal.steps,
        visits: [{ ip: address, email: contact.email ?? '<the address the NDR was sent to>' }],
        errorText: latest?.diagnostic ?? null,
      });
    } else {
      drafts.push({
        route,
        title: PLAYBOOK.delist_email.title,
        where: PLAYBOOK.delist_email.where,
        steps: [
          ...PLAYBOOK.delist_email.steps.slice(0, 1),
          latest
            ? `Attach stored NDR #${latest.messageRef} (${latest.messageId ?? 'no Message-ID'}, ${latest.bouncedAt?.toISOString() ?? 'time unknown'}): save it with repwatch delist draft --ip ${address} --save-ndr FILE.eml.`
            : 'No 5.7.511 NDR is stored for this IP: forward the NDR from your MTA logs or bounce mailbox.',
          ...PLAYBOOK.delist_email.steps.slice(1),
        ],
        attach: latest ? { messageRef: latest.messageRef, messageId: latest.messageId, bouncedAt: latest.bouncedAt, diagnostic: latest.diagnostic } : null,
        errorText: latest?.diagnostic ?? null,
      });
    }
  }
  const caveats = [...(await newerStatusCaveats(database, address, asOf)), ...(await windowCoverageCaveats(database, address, asOf, config.thresholds.windowDays, configuredSndsFeeds(config)))];
  return { ...base, drafts, refused: null, caveats };
}

/**
 * A draft as of an earlier date (a past week's report, `--as-of`) decides with the block list of that
 * date. When a newer IP Status list no longer shows the IP blocked, the block may have been lifted
 * meanwhile: a request for an IP that is not blocked is wasted, and says nothing good about the sender.
 */
async function newerStatusCaveats(database: Database, ip: string, asOf: string): Promise<string[]> {
  const newest = await latestStatusDownloadDay(database);
  if (newest === null || newest <= asOf) return [];
  // Only a block the IP Status list showed can be lifted from it: one known from bounces alone (the
  // 5.7.6xx and 5.7.511 routes) was never on that list.
  if (!(await blockedByStatusAsOf(database, [ip], asOf)).has(ip)) return [];
  const listed = await database.query<{ n: number }>(
    'select count(*)::int as n from analytics.ip_status where blocked and $1::inet between first_ip and last_ip',
    [ip],
  );
  if ((listed[0]?.n ?? 0) > 0) return [];
  return [
    `the IP Status list fetched on ${newest}, after ${asOf}, does not show ${ip} as blocked: the block may have been lifted since. ` +
      `Check the IP on the SNDS portal (or run repwatch delist draft --ip ${ip} without --as-of) before sending this request.`,
  ];
}

interface LatestBounce {
  messageRef: number;
  messageId: string | null;
  bouncedAt: Date | null;
  diagnostic: string | null;
  recipientDomain: string | null;
  senderDomain: string | null;
}

/** The most recent bounce for this IP and route on or before the as-of date. */
async function latestBounce(database: Database, ip: string, route: Route, asOf: string): Promise<LatestBounce | null> {
  const rows = await database.query<{ message_ref: number; message_id: string | null; bounced_at: Date | null; diagnostic: string | null; recipient_domain: string | null; sender_domain: string | null }>(
    `select b.message_ref, m.message_id, b.bounced_at, b.diagnostic, b.recipient_domain, b.sender_domain
     from repwatch.bounce b join repwatch.mail_message m on m.id = b.message_ref
     where b.ip = $1::inet and b.route = $2 and b.day <= $3::date
     order by b.bounced_at desc nulls last, b.message_ref desc limit 1`,
    [ip, route, asOf],
  );
  const r = rows[0];
  return r ? { messageRef: r.message_ref, messageId: r.message_id, bouncedAt: r.bounced_at, diagnostic: r.diagnostic, recipientDomain: r.recipient_domain, senderDomain: r.sender_domain } : null;
}

const CONSUMER_DOMAINS = ['outlook.com', 'hotmail.com', 'live.com', 'msn.com'];

async function outlookForm(database: Database, config: Config, decision: Decision, all: Decision[], latest: LatestBounce | null, contact: DraftContact, asOf: string): Promise<RouteDraft> {
  // Every IP that can be delisted on this route as of the same date goes into one request.
  const together = all.filter((d) => d.status === 'start_delisting' && d.routes.includes('outlook_form')).map((d) => d.ip);
  if (!together.includes(decision.ip)) together.push(decision.ip);
  const ranges = collapseToCidrs(together);

  const [senderRow] = await database.query<{ domain: string | null; origin: string }>(
    `select domain, origin from (
       select lower(original_from_domain) as domain, 'complaints' as origin, count(*) as n, 1 as pref from repwatch.feedback_report
       where source_ip = $1::inet and original_from_domain is not null and day between $2::date - 27 and $2::date group by 1
       union all
       select lower(sender_domain), 'bounces', count(*), 2 from repwatch.bounce
       where ip = $1::inet and sender_domain is not null and day between $2::date - 27 and $2::date group by 1
     ) s order by pref, n desc, domain limit 1`,
    [decision.ip, asOf],
  );
  const senderDomain = senderRow?.domain ?? config.auth.domains[0] ?? null;
  const [rcptRow] = await database.query<{ domain: string }>(
    `select recipient_domain as domain from repwatch.bounce
     where ip = $1::inet and route = 'outlook_form' and recipient_domain = any($2::text[])
     group by 1 order by count(*) desc, 1 limit 1`,
    [decision.ip, CONSUMER_DOMAINS],
  );
  const [statusRow] = await database.query<{ details: string | null }>(
    `select details from analytics.ip_status where blocked and $1::inet between first_ip and last_ip limit 1`,
    [decision.ip],
  );
  const errorText = latest?.diagnostic ?? (statusRow ? `SNDS IP Status: ${statusRow.details ?? 'Blocked'}` : null);
  const code = /\((S3140|S3150)\)|AS\(?31\d\d\)?/.exec(errorText ?? '')?.[0]?.replace(/[()]/g, '') ?? (statusRow ? 'SNDS block' : 'block');
  const placeholder = (text: string) => `<${text}>`;
  const fields: FormField[] = [
    { field: 'Problem description title', value: `Error sending to ${rcptRow?.domain ?? 'outlook.com'} (${code}) from ${ranges.join('; ')}`, source: latest?.diagnostic ? 'bounces' : statusRow ? 'SNDS IP Status' : 'default (no bounce or IP Status text)' },
    { field: 'Contact name', value: contact.name ?? placeholder('your name'), source: contact.name ? '--contact-name' : 'placeholder: fill in' },
    { field: 'Recipient domain', value: rcptRow?.domain ?? 'outlook.com', source: rcptRow ? 'most frequent recipient domain of the blocked bounces' : 'default (choose outlook.com, hotmail.com, live.com or msn.com)' },
    { field: 'Contact email address', value: contact.email ?? placeholder('a valid address: replies go there'), source: contact.email ? '--contact-email' : 'placeholder: fill in' },
    { field: 'Sender domain', value: senderDomain ?? placeholder('the domain your mail is sent from'), source: senderRow ? `most frequent From domain in ${senderRow.origin}` : senderDomain ? 'config auth.domains' : 'placeholder: fill in' },
    { field: 'Company description', value: contact.company ?? placeholder('company, university, ... (choose from the list)'), source: contact.company ? '--company' : 'placeholder: choose' },
    { field: 'Outgoing IP addresses or ranges', value: ranges.join('; '), source: together.length > 1 ? `every start_delisting IP on this route as of ${asOf}, ranges collapsed to CIDR` : 'the IP' },
    { field: 'Server type', value: contact.serverType ?? placeholder('dedicated or shared'), source: contact.serverType ? '--server-type' : 'placeholder: choose' },
    { field: 'Error messages', value: errorText ?? placeholder('paste the full error text of the NDR'), source: latest ? `NDR #${latest.messageRef} of ${latest.bouncedAt?.toISOString() ?? 'unknown time'}` : statusRow ? 'SNDS IP Status' : 'placeholder: paste' },
  ];
  return { route: 'outlook_form', title: PLAYBOOK.outlook_form.title, where: PLAYBOOK.outlook_form.where, steps: PLAYBOOK.outlook_form.steps, fields, errorText };
}

/** The raw bytes of a stored NDR (for --save-ndr), or null. */
export async function storedNdr(database: Database, messageRef: number): Promise<Buffer | null> {
  const rows = await database.query<{ raw: Buffer | null }>('select raw from repwatch.mail_message where id = $1', [messageRef]);
  return rows[0]?.raw ?? null;
}

/**
 * A start_delisting decision counts the window's days without SNDS data as clean: right for an IP that
 * sent nothing those days, wrong for days SNDS has not reported (or repwatch not loaded) yet, which a
 * draft decided as of today's block list usually has. Say so, with the date that has full data.
 */
async function windowCoverageCaveats(database: Database, ip: string, asOf: string, windowDays: number, configuredFeeds: readonly string[]): Promise<string[]> {
  // The feeds that report the IP, from its daily facts (indexed by IP and day; snds_row is not).
  const feeds = await database.query<{ feed: string }>(
    `select distinct snds_feed as feed from repwatch.ip_day_fact where ip = $1::inet and day > $2::date - 28 and day <= $2::date and snds_feed is not null`,
    [ip, asOf],
  );
  const coverage = coverageForFeeds(await sndsWindowCoverage(database, asOf, windowDays, configuredFeeds), feeds.map((f) => f.feed));
  if (coverage.covered >= windowDays) return [];
  const { covered, from, latest } = coverage;
  const gaps = coverage.feedGaps.length ? ` (${feedGapText(coverage.feedGaps)})` : '';
  return [
    `SNDS data covers ${covered} of the ${windowDays} days of the window ${from} … ${asOf}${gaps}${latest ? ` (the latest day with data from every feed is ${latest})` : ''}: ` +
      'days without data count as clean in this decision. Before sending, let SNDS report the missing days (repwatch status shows the feeds) and draft again' +
      (latest && latest < asOf ? `, or check the IP's complaints, trap hits and filter days on full data with repwatch flags --as-of ${latest} (the block list of ${asOf} does not count there).` : '.'),
  ];
}

/** A draft as text for the terminal (and for pasting). */
export function renderDraft(result: DelistDraftResult): string {
  const lines: string[] = [];
  const d = result.decision;
  lines.push(`Delisting draft for ${result.ip} as of ${result.asOf}`);
  if (d) lines.push(`status ${d.status}${d.reasons.length ? ` (${d.reasons.join(', ')})` : ''}; blocked ${d.blocked ? 'yes' : 'no'}; routes ${d.routes.join(', ') || '-'}`);
  for (const caveat of result.caveats) lines.push('', `CHECK FIRST: ${caveat}`);
  if (result.refused) {
    lines.push('', `REFUSED: ${result.refused.why}`);
    for (const fix of result.refused.fixes) lines.push(`  - ${fix}`);
  }
  for (const draft of result.drafts) {
    lines.push('', `== ${draft.route}: ${draft.title}`, `where: ${draft.where}`);
    if (draft.fields) {
      lines.push('', 'Form fields:');
      for (const f of draft.fields) lines.push(`  ${f.field}: ${f.value}`, `      (${f.source})`);
    }
    if (draft.visits) {
      lines.push('', 'Portal visits (one IP per visit):');
      for (const v of draft.visits) lines.push(`  IP ${v.ip} with email ${v.email}`);
      if (draft.errorText) lines.push(`  error seen: ${draft.errorText}`);
    }
    if (draft.route === 'delist_email') lines.push('', `Attach: ${draft.attach ? `stored NDR #${draft.attach.messageRef} ${draft.attach.messageId ?? ''}`.trim() : 'no stored 5.7.511 NDR for this IP'}`);
    lines.push('', 'Steps:');
    draft.steps.forEach((s, i) => lines.push(`  ${i + 1}. ${s}`));
  }
  if (result.cases.length > 0) {
    lines.push('', 'Earlier cases for this IP (attach their history to the request):');
    for (const c of result.cases) lines.push(`  #${c.id} ${c.target} ${c.route} ${c.state} opened ${c.openedAt.toISOString().slice(0, 10)}, ${c.messages.length} message(s)`);
  }
  return `${lines.join('\n')}\n`;
}
