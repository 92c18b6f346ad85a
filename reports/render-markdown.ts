import { fmtChange, fmtInt, fmtRate, fmtReasons, routesShown, STATUS_LABELS } from './format.js';
import { ALL_STATUSES, type DecisionItem, type WeeklyReportData } from './weekly-data.js';

/** Rows per decision status in the Markdown (chat messages and e-mails stay short). */
const MD_ROWS_PER_STATUS = 25;

/**
 * Markdown for e-mail and chat. Chat tools and mail clients render Markdown to HTML, often with raw HTML
 * allowed, so values from outside are made inert: Markdown punctuation is backslash-escaped, then the three
 * characters that can start raw HTML or an entity (`<`, `>`, `&`) become entities. Quotes and apostrophes
 * are plain text in Markdown (no attribute can be opened once `<` is an entity), so they stay as they are:
 * an entity there would show literally wherever a renderer does not decode it. The order matters: escaping
 * punctuation after inserting entities would break them (`&#39;` became `&\#39;`).
 */
export function md(value: unknown): string {
  return textOf(value)
    .replace(/\r\n?|\n/g, ' ')
    .replace(/[\\`*_[\]{}()#+!|~]/g, '\\$&')
    .replace(/[&<>]/g, (c) => MD_ENTITIES[c]!);
}

const MD_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * md() for text that anyone can put into a complaint report, a bounce or the block list (campaigns,
 * subjects, domains, SNDS details). Chat tools and mail clients turn a bare `https://…` or `www.…` into a
 * link, and a link in a report from our own tooling looks trustworthy: such text is shown defanged
 * (`hxxps://`, `evil[.]test`), as security reports show indicators, readable and not clickable.
 */
export function mdUntrusted(value: unknown): string {
  return md(defang(textOf(value)));
}

/** A value as text: '' for null, ISO 8601 for a date. */
function textOf(value: unknown): string {
  if (value === null || value === undefined) return '';
  return value instanceof Date ? value.toISOString() : String(value);
}

/**
 * `hxxps://`, and the last dot of a word's host when it looks like a domain (`evil[.]test`): chat tools
 * and mail clients link bare domains too. Word by word (split on spaces), each word scanned once: no
 * pattern that could backtrack over a long hostile value.
 */
function defang(text: string): string {
  return text
    .replace(/\b(h)tt(ps?):\/\//gi, '$1xx$2://')
    .split(/(\s+)/)
    .map(defangWord)
    .join('');
}

function defangWord(word: string): string {
  const scheme = word.indexOf('://');
  const start = scheme >= 0 ? scheme + 3 : 0;
  // The host: up to a port, a path, a query or a fragment, without trailing punctuation (a full stop, a bracket).
  const hostEnd = [':', '/', '?', '#'].map((c) => word.indexOf(c, start)).filter((i) => i >= 0);
  let last = (hostEnd.length ? Math.min(...hostEnd) : word.length) - 1;
  while (last > start && !/[a-z0-9]/i.test(word[last]!)) last -= 1;
  const dot = word.lastIndexOf('.', last);
  if (dot <= start || word[dot - 1] === '.' || !/^[a-z]{2,63}$/i.test(word.slice(dot + 1, last + 1))) return word;
  return `${word.slice(0, dot)}[.]${word.slice(dot + 1)}`;
}

/** One of the configured sending domains or a subdomain of one (`mail.example.com` of `example.com`). */
function isOwnDomain(domain: string, own: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return own.some((o) => d === o || d.endsWith(`.${o}`));
}

/** How values are written: escaped for Markdown, or as plain text for the e-mail's text/plain part. */
interface Escapes {
  esc: (value: unknown) => string;
  untrusted: (value: unknown) => string;
}

const MARKDOWN: Escapes = { esc: md, untrusted: mdUntrusted };

/** Plain text: one line per value, no control characters (a hostile subject could carry terminal
 * escapes), links from outside defanged as in the Markdown (mail clients link bare URLs in text too). */
const PLAIN: Escapes = {
  esc: plainText,
  untrusted: (value) => defang(plainText(value)),
};

function plainText(value: unknown): string {
  return textOf(value).replace(/\r\n?|\n/g, ' ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' ');
}

/** The report as Markdown (`text` style: the same layout without Markdown escapes, for the e-mail's
 * plain-text part, where backslashes and entities would show as they are). */
export function renderMarkdown(data: WeeklyReportData, style: 'markdown' | 'text' = 'markdown'): string {
  const x = style === 'markdown' ? MARKDOWN : PLAIN;
  const p = data.period;
  const { current: c, previous: prev } = data.headline;
  const lines: string[] = [];
  lines.push(`# repwatch weekly report — ${p.isoWeek ? p.week : `7 days to ${p.to}`}`, '');
  lines.push(`${p.from} to ${p.to} (previous week ${p.previousFrom} to ${p.previousTo}).`, '');
  for (const note of data.notes) lines.push(`> ${x.esc(note)}`, '');
  lines.push('## Headline', '');
  lines.push('| | this week | previous | change |', '|---|---:|---:|---:|');
  lines.push(`| Volume (recipients) | ${fmtInt(c.recipients)} | ${fmtInt(prev.recipients)} | ${fmtChange(c.recipients, prev.recipients)} |`);
  lines.push(`| Complaints | ${fmtInt(c.complaints)} | ${fmtInt(prev.complaints)} | ${fmtChange(c.complaints, prev.complaints)} |`);
  lines.push(`| Complaint rate | ${fmtRate(c.complaintRate)} | ${fmtRate(prev.complaintRate)} | |`);
  lines.push(`| Trap hits | ${fmtInt(c.trapHits)} | ${fmtInt(prev.trapHits)} | ${fmtChange(c.trapHits, prev.trapHits)} |`);
  lines.push(`| IPs with data | ${fmtInt(c.ips)} | ${fmtInt(prev.ips)} | ${fmtChange(c.ips, prev.ips)} |`);
  for (const s of ALL_STATUSES) {
    lines.push(`| IPs ${STATUS_LABELS[s]} | ${fmtInt(data.headline.statusCounts[s])} | ${fmtInt(data.headline.previousStatusCounts[s])} | |`);
  }
  lines.push('');
  lines.push('## Decisions', '');
  for (const status of ['start_delisting', 'fix_first', 'at_risk'] as const) {
    const items = data.decisions.items.filter((d) => d.status === status);
    lines.push(`### ${STATUS_LABELS[status]} (${items.length})`, '');
    if (!items.length) lines.push('None.');
    for (const d of items.slice(0, MD_ROWS_PER_STATUS)) lines.push(decisionLine(d, x));
    if (items.length > MD_ROWS_PER_STATUS) lines.push(`- … ${items.length - MD_ROWS_PER_STATUS} more in the CSV`);
    lines.push('');
  }
  lines.push(`## Block list: ${data.blockList.total} ranges`, '');
  for (const r of data.blockList.ranges.slice(0, 20)) lines.push(`- ${x.esc(r.firstIp)}–${x.esc(r.lastIp)} ${x.untrusted(r.details ?? '')}`);
  const dl = data.delisting;
  lines.push('', `## Delisting cases: ${dl.cases.length}`, '');
  for (const c of dl.cases.slice(0, 20)) lines.push(`- #${c.id} ${x.esc(c.target)} (${x.esc(c.route)}): ${x.esc(c.state)} since ${c.stateChangedAt.slice(0, 10)}, ${c.messages} message(s)`);
  lines.push('', `## Other DNS blocklists: ${dl.blocklists.listings.filter((b) => b.outcome === 'listed').length} listings`, '');
  if (!dl.blocklists.checkedAt) lines.push('- never checked (`repwatch check blocklists`)');
  for (const b of dl.blocklists.listings.slice(0, 20)) lines.push(`- ${x.esc(b.ip)} on ${x.esc(b.zone)}: ${x.esc(b.outcome)}${b.isNew ? ' (new)' : ''}${b.meaning ? ` — ${x.esc(b.meaning)}` : ''}`);
  const flagged = dl.auth.filter((a) => a.flagged);
  lines.push('', `## Bulk-sender authentication: ${flagged.length} domain(s) flagged`, '');
  const domain = (value: string | null, fallback: string) => (value !== null && isOwnDomain(value, data.ownDomains) ? x.esc(value) : x.untrusted(value ?? fallback));
  for (const a of flagged) lines.push(`- ${domain(a.domain, '')}: SPF ${x.esc(a.spf)}, DKIM ${x.esc(a.dkim)}, DMARC ${x.esc(a.dmarc)}${a.problems.length ? ` — ${x.esc(a.problems.join('; '))}` : ''}`);
  lines.push('', `## Trap hits: ${fmtInt(data.trapHits.total)}`, '');
  for (const t of data.trapHits.ips.slice(0, 10)) lines.push(`- ${x.esc(t.ip)}: ${fmtInt(t.hits)} on ${t.days} day(s)`);
  lines.push('', '## Top campaigns by complaints', '');
  for (const c of data.topCampaigns) lines.push(`- ${x.untrusted(c.campaign ?? '(none)')}: ${fmtInt(c.complaints)}${c.exampleSubject ? ` — “${x.untrusted(c.exampleSubject)}”` : ''}`);
  lines.push('', '## Top From domains by complaints', '');
  for (const f of data.topFromDomains) lines.push(`- ${domain(f.domain, '(unknown)')}: ${fmtInt(f.complaints)}`);
  lines.push('', '## Data health', '');
  for (const l of data.sndsLinks) lines.push(`- SNDS link ${x.esc(l.feed)}: ${l.daysLeft === null ? x.esc(l.state) : `${l.daysLeft} days left (${x.esc(l.state)})`}${l.advice ? ` — ${x.esc(l.advice)}` : ''}`);
  for (const s of data.freshness.sources) lines.push(`- ${x.esc(s.job)}: last success ${s.lastSuccess ?? 'never'}, last run ${x.esc(s.lastStatus)}`);
  lines.push(`- Days without SNDS data: ${data.freshness.daysWithoutData.join(', ') || 'none'}`);
  for (const g of data.freshness.feedGaps) lines.push(`- SNDS feed ${x.esc(g.feed)} has no data for ${g.days.join(', ')} (its IPs count those days as clean)`);
  lines.push(`- Read during the week (${data.period.from} … ${data.period.to}): rejected rows ${fmtInt(data.rejections.total)}; quarantined messages ${fmtInt(data.quarantined.total)}`);
  lines.push('');
  return lines.join('\n');
}

function decisionLine(d: DecisionItem, x: Escapes): string {
  const figures = `${fmtInt(d.recipients7d)} recipients, ${fmtInt(d.complaints7d)} complaints, rate ${fmtRate(d.complaintRate7d)}, ${fmtInt(d.trapHits7d)} trap hits`;
  const reasons = d.reasons.length ? ` — ${x.esc(fmtReasons(d.reasons))}` : '';
  const shown = routesShown(d);
  const route = shown ? ` — route ${x.esc(shown)}` : '';
  let line = `- **${x.esc(d.ip)}**${reasons}${route} (${figures})`;
  for (const pb of d.playbooks ?? []) {
    line += `\n  - ${x.esc(pb.title)} — ${x.esc(pb.target)}`;
    for (const r of pb.request) line += `\n    - ${x.esc(r.label)}: ${x.esc(r.value)}`;
  }
  if (d.draftNote) line += `\n  - ${x.esc(d.draftNote)}`;
  for (const fix of d.toFix ?? []) line += `\n  - fix: ${x.esc(fix)}`;
  return line;
}
