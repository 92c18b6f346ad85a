import { escapeHtml as e } from './escape.js';
import { fmtChange, fmtInt, fmtRate, fmtReasons, routesShown, STATUS_LABELS } from './format.js';
import { sparkline } from './charts.js';
import { ALL_STATUSES, HTML_ROWS_PER_STATUS, type DecisionItem, type WeeklyReportData } from './weekly-data.js';

/** Rendered charts, keyed by IP and by pool name. */
export interface RenderedCharts {
  ips: Map<string, string>;
  pools: Map<string, string>;
}

/**
 * One self-contained HTML file: inline CSS and SVG, no script, nothing from the network. Every value
 * goes through escapeHtml (`e`) — the numbers too, so that there is one rule and no exceptions to audit.
 */
export function renderHtml(data: WeeklyReportData, charts: RenderedCharts): string {
  const p = data.period;
  const title = `repwatch weekly report — ${p.isoWeek ? p.week : `7 days to ${p.to}`}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${e(title)}</h1>
<p class="meta">${e(p.from)} to ${e(p.to)} (previous: ${e(p.previousFrom)} to ${e(p.previousTo)}) · generated ${e(data.generatedAt)} · thresholds: warn ${e(fmtRate(data.thresholds.complaintRateWarn))}, max ${e(fmtRate(data.thresholds.complaintRateMax))}, window ${e(data.thresholds.windowDays)} days</p>
${data.notes.map((n) => `<p class="note">${e(n)}</p>`).join('\n')}
</header>
<main>
${headline(data)}
${decisions(data)}
${ipCharts(data, charts)}
${poolCharts(data, charts)}
${trapHits(data)}
${blockList(data)}
${delistingWork(data)}
${complaintsBy(data)}
${health(data)}
</main>
<footer><p class="meta">Figures come from the analytics views (analytics.ip_day, analytics.ip_flag, analytics.complaint, analytics.ip_status, analytics.pipeline_run) — the same data BI tools read.</p></footer>
</body>
</html>
`;
}

function headline(data: WeeklyReportData): string {
  const { current: c, previous: p, statusCounts, previousStatusCounts } = data.headline;
  const vs = (current: number | null, previous: number | null) => `${fmtChange(current, previous)} vs previous week`;
  const card = (label: string, value: string, change: string) =>
    `<div class="card"><div class="label">${e(label)}</div><div class="value">${e(value)}</div><div class="change">${e(change)}</div></div>`;
  const statusRows = ALL_STATUSES.map(
    (s) => `<tr class="st-${e(s)}"><td>${e(STATUS_LABELS[s])}</td><td class="num">${e(fmtInt(statusCounts[s]))}</td><td class="num">${e(fmtInt(previousStatusCounts[s]))}</td></tr>`,
  ).join('');
  return `<section id="headline"><h2>Headline</h2>
<div class="cards">
${card('Volume (recipients)', fmtInt(c.recipients), vs(c.recipients, p.recipients))}
${card('Complaints', fmtInt(c.complaints), vs(c.complaints, p.complaints))}
${card('Complaint rate', fmtRate(c.complaintRate), `previous week ${fmtRate(p.complaintRate)}`)}
${card('Trap hits', fmtInt(c.trapHits), vs(c.trapHits, p.trapHits))}
${card('IPs with data', fmtInt(c.ips), vs(c.ips, p.ips))}
</div>
<div class="scroll"><table><thead><tr><th>IPs per status</th><th class="num">as of ${e(data.period.to)}</th><th class="num">as of ${e(data.period.previousTo)}</th></tr></thead><tbody>${statusRows}</tbody></table></div>
</section>`;
}

function figures(d: DecisionItem): string {
  return `${e(fmtInt(d.recipients7d))} recipients · ${e(fmtInt(d.complaints7d))} complaints · rate ${e(fmtRate(d.complaintRate7d))} · ${e(fmtInt(d.trapHits7d))} trap hits${spark(d)}`;
}

/** The 28-day complaint-rate sparkline (numbers only, drawn here: the one home-made chart). */
function spark(d: DecisionItem): string {
  return d.rate28d ? ` <span class="spark" title="complaint rate, 28 days">${sparkline(d.rate28d)}</span>` : '';
}

function decisions(data: WeeklyReportData): string {
  const byStatus = (s: string) => data.decisions.items.filter((d) => d.status === s);
  const more = (n: number) => (n > HTML_ROWS_PER_STATUS ? `<p class="meta">${e(fmtInt(n - HTML_ROWS_PER_STATUS))} more in the CSV and JSON files.</p>` : '');
  const start = byStatus('start_delisting');
  const fix = byStatus('fix_first');
  const risk = byStatus('at_risk');
  const startHtml = start.slice(0, HTML_ROWS_PER_STATUS).map(
    (d) => `<article class="decision st-start_delisting"><h4>${e(d.ip)} <span class="badge">blocked</span> <span class="route">${e(routesShown(d))}</span></h4>
<p>${figures(d)}${d.reasons.length ? ` · reasons: ${e(fmtReasons(d.reasons))}` : ''}</p>
${playbooks(d)}
</article>`,
  );
  const fixHtml = fix.slice(0, HTML_ROWS_PER_STATUS).map(
    (d) => `<article class="decision st-fix_first"><h4>${e(d.ip)}${d.blocked ? ' <span class="badge">blocked</span>' : ''} <span class="route">${e(routesShown(d))}</span></h4>
<p>${figures(d)} · reasons: <strong>${e(fmtReasons(d.reasons))}</strong></p>
<p><strong>Fix first:</strong></p><ul>${(d.toFix ?? []).map((t) => `<li>${e(t)}</li>`).join('')}</ul>
${playbooks(d)}</article>`,
  );
  const riskRows = risk
    .slice(0, HTML_ROWS_PER_STATUS)
    .map(
      (d) =>
        `<tr><td>${e(d.ip)}</td><td>${e(fmtReasons(d.reasons))}</td><td class="num">${e(fmtInt(d.recipients7d))}</td><td class="num">${e(fmtInt(d.complaints7d))}</td><td class="num">${e(fmtRate(d.complaintRate7d))}</td><td class="num">${e(fmtInt(d.trapHits7d))}</td><td>${spark(d)}</td></tr>`,
    )
    .join('');
  const w = data.thresholds.windowDays;
  return `<section id="decisions"><h2>Decisions</h2><p class="meta">From ${e(data.decisions.source)}; figures are the ${e(data.thresholds.windowDays)} days ending ${e(data.period.to)}.</p>
<h3 class="st-start_delisting">Start delisting (${e(fmtInt(start.length))})</h3>
${start.length ? startHtml.join('\n') : '<p>None.</p>'}${more(start.length)}
<h3 class="st-fix_first">Fix first (${e(fmtInt(fix.length))})</h3>
${fix.length ? fixHtml.join('\n') : '<p>None.</p>'}${more(fix.length)}
<h3 class="st-at_risk">At risk (${e(fmtInt(risk.length))})</h3>
${risk.length ? `<div class="scroll"><table><thead><tr><th>IP</th><th>reasons</th><th class="num">recipients ${e(w)}d</th><th class="num">complaints ${e(w)}d</th><th class="num">rate ${e(w)}d</th><th class="num">trap hits ${e(w)}d</th><th>rate 28d</th></tr></thead><tbody>${riskRows}</tbody></table></div>` : '<p>None.</p>'}${more(risk.length)}
${routePlaybooks([...start, ...fix])}
</section>`;
}

/** The delisting route(s) of a blocked IP: steps, and the pre-filled request when there is one. */
function playbooks(d: DecisionItem): string {
  const note = d.draftNote ? `<p class="meta">${e(d.draftNote)}</p>` : '';
  const books = (d.playbooks ?? []).map(
    (pb) => `<p>Route: <strong>${e(pb.title)}</strong> — ${e(pb.target)} (steps: <a href="#playbook-${e(pb.route)}">playbook ${e(pb.route)}</a>)</p>
${pb.request.length ? `<details open><summary>Pre-filled request</summary><dl class="request">${pb.request.map((r) => `<dt>${e(r.label)}</dt><dd>${e(r.value)}${r.source ? ` <span class="meta">(${e(r.source)})</span>` : ''}</dd>`).join('')}</dl></details>` : ''}`,
  );
  return `${books.join('\n')}${note}`;
}

/** Each route's steps once, after the IPs that use it (the IPs link here). */
function routePlaybooks(items: DecisionItem[]): string {
  const seen = new Map<string, NonNullable<DecisionItem['playbooks']>[number]>();
  for (const d of items) for (const pb of d.playbooks ?? []) if (!seen.has(pb.route)) seen.set(pb.route, pb);
  if (seen.size === 0) return '';
  return `<h3>Delisting playbooks</h3>${[...seen.values()]
    .map((pb) => `<section class="playbook" id="playbook-${e(pb.route)}"><h4>${e(pb.title)}</h4><p>${e(pb.target)}</p><ol>${pb.steps.map((step) => `<li>${e(step)}</li>`).join('')}</ol></section>`)
    .join('\n')}`;
}

function ipCharts(data: WeeklyReportData, charts: RenderedCharts): string {
  const figs = data.charts.ips
    .map((c) => {
      const svg = charts.ips.get(c.ip);
      const label = c.why === 'needs_action' ? STATUS_LABELS[c.status ?? ''] ?? '' : 'top volume';
      return svg ? `<figure class="chart">${svg}<figcaption>${e(c.ip)} — ${e(label)}</figcaption></figure>` : '';
    })
    .join('\n');
  return `<section id="ip-charts"><h2>Per-IP trends (${e(data.charts.ipDays)} days)</h2><p class="meta">${e(data.charts.note)}</p>${figs || '<p>No IPs to chart.</p>'}</section>`;
}

function poolCharts(data: WeeklyReportData, charts: RenderedCharts): string {
  const figs = data.charts.pools
    .map((p) => {
      const svg = charts.pools.get(p.pool);
      return svg ? `<figure class="chart">${svg}<figcaption>pool ${e(p.pool)}${p.cidrs.length ? ` (${e(p.cidrs.join(', '))})` : ' (every IP)'}</figcaption></figure>` : '';
    })
    .join('\n');
  return `<section id="pools"><h2>Pool trends (${e(data.charts.poolDays)} days)</h2>${figs}</section>`;
}

function table(headers: string[], rows: string[][], numeric: number[] = []): string {
  if (rows.length === 0) return '<p>None.</p>';
  const th = headers.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${e(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${e(c)}</td>`).join('')}</tr>`).join('');
  return `<div class="scroll"><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function trapHits(data: WeeklyReportData): string {
  return `<section id="trap-hits"><h2>Trap hits (${e(fmtInt(data.trapHits.total))})</h2>
${table(['IP', 'hits', 'days with hits', 'last day'], data.trapHits.ips.map((t) => [t.ip, fmtInt(t.hits), fmtInt(t.days), t.lastDay]), [1, 2])}</section>`;
}

function blockList(data: WeeklyReportData): string {
  const b = data.blockList;
  const shown = b.ranges.length < b.total ? ` (first ${fmtInt(b.ranges.length)} shown)` : '';
  return `<section id="block-list"><h2>Current block list (${e(fmtInt(b.total))} ranges)</h2>
<p class="meta">Latest SNDS IP Status download${b.fetchedAt ? ` fetched ${e(b.fetchedAt)}` : ': none loaded'}${e(shown)}.</p>
${table(['first IP', 'last IP', 'details'], b.ranges.map((r) => [r.firstIp, r.lastIp, r.details ?? '']))}</section>`;
}

function delistingWork(data: WeeklyReportData): string {
  const d = data.delisting;
  const checked = d.blocklists.checkedAt ? `checked ${e(d.blocklists.checkedAt)}; ${e(fmtInt(d.blocklists.cleanPairs))} IP/zone pairs clean` : 'never checked (repwatch check blocklists)';
  return `<section id="delisting"><h2>Delisting cases, other blocklists, authentication</h2>
<h3>Delisting cases (${e(fmtInt(d.cases.length))})</h3>
${table(['case', 'IP or range', 'route', 'state', 'opened', 'last change', 'messages', 'last message'], d.cases.map((c) => [`#${c.id}`, c.target, c.route, c.state, c.openedAt.slice(0, 10), c.stateChangedAt.slice(0, 10), fmtInt(c.messages), c.lastMessage ?? '']), [6])}
<h3>Other DNS blocklists</h3>
<p class="meta">${checked}.</p>
${table(['IP', 'zone', 'result', 'answer', 'meaning', 'listed since'], d.blocklists.listings.map((b) => [b.ip, b.zone, b.isNew ? `${b.outcome} (new)` : b.outcome, b.answer, b.meaning ?? '', b.listedSince ?? '']))}
<h3>Bulk-sender authentication (Outlook.com, above ${e(fmtInt(data.thresholds.bulkSenderDailyVolume))} messages a day)</h3>
${table(['domain', 'SPF', 'DKIM', 'DMARC', 'policy', 'messages/day', 'meets the rules', 'problems'], d.auth.map((a) => [a.flagged ? `${a.domain} (flagged)` : a.domain, a.spf, a.dkim, a.dmarc, a.dmarcPolicy ?? '', a.dailyVolume === null ? '' : fmtInt(a.dailyVolume), a.meetsRequirement ? 'yes' : 'no', a.problems.join('; ')]), [5])}</section>`;
}

function complaintsBy(data: WeeklyReportData): string {
  return `<section id="complaints"><h2>Complaints by campaign and From domain</h2>
<h3>Top campaigns</h3>
${table(['campaign', 'complaints', 'IPs', 'example subject'], data.topCampaigns.map((c) => [c.campaign ?? '(none)', fmtInt(c.complaints), fmtInt(c.ips), c.exampleSubject ?? '']), [1, 2])}
<h3>Top From domains</h3>
${table(['From domain', 'complaints', 'IPs'], data.topFromDomains.map((d) => [d.domain ?? '(unknown)', fmtInt(d.complaints), fmtInt(d.ips)]), [1, 2])}</section>`;
}

function health(data: WeeklyReportData): string {
  const f = data.freshness;
  return `<section id="health"><h2>Data health</h2>
<h3>SNDS links</h3>
${table(['feed', 'created', 'expires', 'days left', 'state', 'what to do'], data.sndsLinks.map((l) => [l.feed, l.createdOn ?? '', l.expiresOn ?? '', l.daysLeft === null ? '' : String(l.daysLeft), l.state, l.advice ?? '']), [3])}
<h3>Freshness</h3>
${table(['job', 'last success', 'last run', 'last status', 'detail'], f.sources.map((s) => [s.job, s.lastSuccess ?? 'never', s.lastStarted, s.lastStatus, s.lastDetail ?? '']))}
<p>Days of the period with no SNDS data: ${f.daysWithoutData.length ? e(f.daysWithoutData.join(', ')) : 'none'}.</p>
${f.feedGaps.map((g) => `<p>SNDS feed ${e(g.feed)} has no data for ${e(g.days.join(', '))} (its IPs count those days as clean).</p>`).join('\n')}
<h3>Rejected rows read during the week (${e(fmtInt(data.rejections.total))})</h3>
${table(['source', 'reason', 'count', 'last location'], data.rejections.groups.map((r) => [r.source, r.reason, fmtInt(r.count), r.lastLocation]), [2])}
<h3>Quarantined messages read during the week (${e(fmtInt(data.quarantined.total))})</h3>
${table(['mailbox', 'reason', 'count'], data.quarantined.groups.map((q) => [q.mailbox, q.reason, fmtInt(q.count)]), [2])}</section>`;
}

const CSS = `
:root{--fg:#1a1a1a;--muted:#666;--line:#ddd;--red:#b30000;--amber:#b35900;--yellow:#8a6d00}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;max-width:1000px;padding:12px}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.2em;border-bottom:2px solid var(--line);padding-bottom:.2em;margin-top:1.6em}h3{font-size:1.05em}
.meta{color:var(--muted);font-size:.85em}.note{background:#fff4e5;border-left:4px solid var(--amber);padding:.4em .6em}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{flex:1 1 150px;border:1px solid var(--line);border-radius:6px;padding:8px}
.card .label{color:var(--muted);font-size:.8em}.card .value{font-size:1.4em;font-weight:600}.card .change{font-size:.8em;color:var(--muted)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}.scroll table{min-width:34em}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:.4em 0}th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f6f6f6}.num{text-align:right;white-space:nowrap}
.decision{border:1px solid var(--line);border-left-width:5px;border-radius:4px;padding:6px 10px;margin:8px 0}
.decision h4{margin:.2em 0}.decision.st-start_delisting{border-left-color:var(--red)}.decision.st-fix_first{border-left-color:var(--amber)}
h3.st-start_delisting{color:var(--red)}h3.st-fix_first{color:var(--amber)}h3.st-at_risk{color:var(--yellow)}
.badge{font-size:.7em;background:var(--red);color:#fff;border-radius:3px;padding:1px 4px;vertical-align:middle}.route{font-size:.75em;color:var(--muted)}
dl.request{display:grid;grid-template-columns:minmax(8em,max-content) 1fr;gap:2px 10px;font-size:.9em}dl.request dt{color:var(--muted)}dl.request dd{margin:0;overflow-wrap:anywhere}
svg.spark{vertical-align:middle}figure.chart{margin:10px 0;break-inside:avoid;page-break-inside:avoid}figure.chart svg{max-width:100%;height:auto}figcaption{font-size:.8em;color:var(--muted)}
@media (max-width:600px){body{font-size:14px;padding:8px}.card .value{font-size:1.2em}dl.request{grid-template-columns:1fr}dl.request dd{margin-bottom:6px}}
@media print{body{max-width:none;font-size:10.5pt;padding:0}h2{break-after:avoid;page-break-after:avoid}section{break-inside:auto}
.decision,tr,figure{break-inside:avoid;page-break-inside:avoid}details>summary{display:none}.scroll{overflow:visible}a{color:inherit}}
`;
