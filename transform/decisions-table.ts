import { percentDigits } from '../lib/percent.js';
import { STATUSES } from './decide.js';
import { decisionWindow, type Decision } from './decisions.js';
import { wrapWords } from '../lib/wrap.js';

/**
 * The decisions as a terminal table that fits 80 columns: one line of numbers per IP, and under it
 * an indented line with the reasons and the delisting route when there are any (reasons are the point
 * of the table, so they are never cut off).
 */
export function decisionsTable(decisions: readonly Decision[], asOf: string, windowDays: number): string {
  const window = decisionWindow(asOf, windowDays);
  const counts = STATUSES.map((s) => `${decisions.filter((d) => d.status === s).length} ${s}`).join(' · ');
  const out = [`Decisions as of ${asOf} (window ${window.from} … ${window.to}, ${windowDays} days): ${decisions.length} IPs`, counts, ''];
  if (decisions.length === 0) {
    out.push(`No IP has SNDS data, complaints or block evidence in the 28 days ending ${asOf}.`);
    return `${out.join('\n')}\n`;
  }
  const columns: [string, number, 'l' | 'r'][] = [
    // Message recipients (not RCPT commands) over the window, whatever its length.
    ['IP', 15, 'l'], ['STATUS', 15, 'l'], [`RECIP ${windowDays}D`, 9, 'r'], ['COMPL', 6, 'r'], ['RATE %', 7, 'r'], ['TRAPS', 6, 'r'], ['RED', 3, 'r'], ['YEL', 3, 'r'],
  ];
  const line = (cells: string[]) =>
    cells.map((c, i) => (columns[i]![2] === 'r' ? c.padStart(columns[i]![1]) : c.padEnd(columns[i]![1]))).join('  ').trimEnd();
  out.push(line(columns.map(([title]) => title)), line(columns.map(([, width]) => '-'.repeat(width))));
  const indent = ' '.repeat(columns[0]![1] + 2);
  for (const d of decisions) {
    const ipFits = d.ip.length <= columns[0]![1];
    if (!ipFits) out.push(d.ip);
    out.push(
      line([
        ipFits ? d.ip : '',
        d.status,
        count(d.recipients7d),
        count(d.complaints7d),
        d.complaintRate7d === null ? '-' : percentDigits(d.complaintRate7d),
        count(d.trapHits7d),
        String(d.redDays7d),
        String(d.yellowDays7d),
      ]),
    );
    const why = [
      ...(d.reasons.length ? [`why: ${d.reasons.join(', ')}`] : []),
      ...(d.route ? [`route: ${d.route}${d.routes.length > 1 ? ` (also ${d.routes.slice(1).join(', ')})` : ''}`] : []),
    ].join('; ');
    if (why) out.push(...wrapWords(why, 80 - indent.length).split('\n').map((part) => indent + part));
  }
  return `${out.join('\n')}\n`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}
