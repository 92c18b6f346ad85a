import { join } from 'node:path';
import type { DemoStep } from '../run-demo.js';
import { sampleDir } from '../generate-sample.js';
import { ingestBounces } from '../../ingest/bounces/ingest-bounces.js';
import { mboxSource } from '../../ingest/mailbox/mbox-source.js';
import { buildDelistDrafts, defaultAsOf } from '../../delisting/drafts.js';
import { utcDay } from '../../lib/clock.js';

/**
 * Bounces from the sample mailbox (demo/sample/bounces.mbox, made by demo/generate-bounces.ts): the
 * Microsoft codes become block evidence, the decisions pick them up, and the delisting drafts for the
 * blocked IPs show what to send on each route.
 */
export const bouncesStep: DemoStep = {
  name: 'bounces: block evidence and delisting drafts',
  async run(ctx) {
    const database = await ctx.database();
    const summary = await ingestBounces({ database, config: ctx.config, clock: ctx.clock, logger: ctx.logger }, mboxSource({ path: join(sampleDir(), 'bounces.mbox'), name: 'demo-bounces' }));
    if (summary.error) throw new Error(`demo bounces: ${summary.error}`);
    const lines = [
      `${summary.seen} bounces read: ${summary.stored} stored (${Object.entries(summary.byClassification).map(([k, v]) => `${k} ${v}`).join(', ')}), ${summary.duplicates} already stored, ${summary.quarantined} quarantined; ${summary.evidence} block evidence rows`,
    ];
    const evidence = await database.query<{ ip: string; kind: string; what: string; days: number }>(
      `select host(ip) as ip, kind, coalesce(route, reason) as what, count(distinct day)::int as days
       from repwatch.block_evidence where source = 'bounce' group by 1, 2, 3 order by 2, 3, 1`,
    );
    for (const e of evidence) lines.push(`  ${e.ip.padEnd(15)} ${e.kind.padEnd(7)} ${e.what} (${e.days} day(s))`);
    const asOf = await defaultAsOf(database, utcDay(ctx.clock.now()), ctx.config.thresholds.windowDays);
    for (const ip of ['203.0.113.13', '198.51.100.27', '198.51.100.24']) {
      const draft = await buildDelistDrafts(database, ctx.config, ip, asOf);
      if (draft.refused) {
        lines.push(`draft for ${ip}: refused: ${draft.refused.why}`);
        continue;
      }
      for (const d of draft.drafts) {
        const detail =
          d.fields?.find((f) => f.field === 'Outgoing IP addresses or ranges')?.value ??
          (d.visits ? `${d.visits.length} portal visit(s)` : d.attach ? `forward stored NDR #${d.attach.messageRef}` : '');
        lines.push(`draft for ${ip} as of ${asOf}: ${d.route} (${detail})`);
      }
    }
    lines.push('(`repwatch delist draft --ip IP` prints the whole request; `repwatch delist open/note/status` keeps the correspondence)');
    return lines.join('\n');
  },
};
