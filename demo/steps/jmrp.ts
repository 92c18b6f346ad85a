import { join } from 'node:path';
import type { DemoStep } from '../run-demo.js';
import { sampleDir } from '../generate-sample.js';
import { ingestJmrpMailbox } from '../../ingest/jmrp/ingest-mailbox.js';
import { mboxSource } from '../../ingest/mailbox/mbox-source.js';

/**
 * Complaint reports from the sample mailbox (demo/sample/jmrp-complaints.mbox: ARF, 2026-shape JMRP
 * ARF, legacy JMRP, a non-report and a malformed one) through the real mbox source, parser and loader.
 */
export const jmrpStep: DemoStep = {
  name: 'JMRP complaint reports',
  async run(ctx) {
    const database = await ctx.database();
    const r = await ingestJmrpMailbox({ database, config: ctx.config, mailbox: mboxSource({ path: join(sampleDir(), 'jmrp-complaints.mbox'), name: 'demo-jmrp' }), logger: ctx.logger, clock: ctx.clock });
    if (r.error) throw new Error(`demo jmrp: ${r.error}`);
    const lines = [
      `${r.seen} messages read: ${r.complaints} complaints (${r.incidents} incidents), ${r.otherReports} other reports, ${r.notAReport} not a report, ${r.quarantined} quarantined, ${r.duplicates} already stored`,
    ];
    const formats = await database.query<{ report_format: string; source_ip_origin: string | null; n: number }>(
      `select report_format, source_ip_origin, count(*)::int as n from analytics.complaint where mailbox = 'demo-jmrp' group by 1, 2 order by 1, 2`,
    );
    lines.push(`  by format and IP origin: ${formats.map((f) => `${f.report_format}/${f.source_ip_origin ?? 'none'} ${f.n}`).join(', ')}`);
    const span = await database.query<{ first: string | null; last: string | null; ips: number }>(
      `select min(day)::text as first, max(day)::text as last, count(distinct source_ip)::int as ips from analytics.complaint where mailbox = 'demo-jmrp'`,
    );
    if (span[0]?.first) lines.push(`  ${span[0].ips} sending IPs, ${span[0].first} to ${span[0].last}`);
    for (const q of r.quarantine.slice(0, 3)) lines.push(`  quarantined: ${q.reason ?? ''}`);
    return lines.join('\n');
  },
};
