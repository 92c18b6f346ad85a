import type { DemoStep } from '../run-demo.js';
import { rebuildAll } from '../../transform/recompute.js';
import { computeDecisions, latestSndsDay, latestStatusDownloadDay } from '../../transform/decisions.js';
import { decisionsTable } from '../../transform/decisions-table.js';

/**
 * After the SNDS and JMRP steps: recompute facts and decisions from everything loaded, then print the
 * decisions table for the latest day with SNDS data (what `repwatch flags` shows).
 */
export const decisionsStep: DemoStep = {
  name: 'decisions',
  async run(ctx) {
    const database = await ctx.database();
    const summary = await rebuildAll(database, ctx.config);
    const asOf = await latestSndsDay(database);
    if (!asOf) return 'no SNDS data loaded: no decisions';
    const decisions = await computeDecisions(database, ctx.config, asOf);
    const newestStatus = await latestStatusDownloadDay(database);
    return [
      `recomputed ${summary.factRows} IP-days and the decisions of ${summary.asOfDates.length} as-of dates`,
      '',
      decisionsTable(decisions, asOf, ctx.config.thresholds.windowDays).trimEnd(),
      ...(newestStatus && newestStatus > asOf ? ['', `note: IP Status list of ${newestStatus} is newer than ${asOf}: not used for it`] : []),
    ].join('\n');
  },
};
