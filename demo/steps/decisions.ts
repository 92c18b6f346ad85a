import type { DemoStep } from '../run-demo.js';
import { daysBetween, utcDay } from '../../lib/clock.js';
import { rebuildAll } from '../../transform/recompute.js';
import { computeDecisions, latestSndsDay, latestStatusDownloadDay } from '../../transform/decisions.js';
import { decisionsTable } from '../../transform/decisions-table.js';

/**
 * After the SNDS and JMRP steps: recompute facts and decisions from everything loaded, then print the
 * decisions table for the latest day. That is the latest day with SNDS data (what `repwatch flags`
 * shows), or the day of the IP Status download when it is later: the sample's block list is loaded
 * when the demo runs, and a block list only counts from the day it was downloaded.
 */
export const decisionsStep: DemoStep = {
  name: 'decisions',
  async run(ctx) {
    const database = await ctx.database();
    const summary = await rebuildAll(database, ctx.config);
    const sndsDay = await latestSndsDay(database, utcDay(ctx.clock.now()));
    if (!sndsDay) return 'no SNDS data loaded: no decisions';
    const statusDay = await latestStatusDownloadDay(database);
    // Only while the SNDS data still falls in that date's window; otherwise the SNDS day, with a note.
    const useStatusDay = statusDay !== null && statusDay > sndsDay && daysBetween(sndsDay, statusDay) < ctx.config.thresholds.windowDays;
    const asOf = useStatusDay ? statusDay : sndsDay;
    const decisions = await computeDecisions(database, ctx.config, asOf);
    return [
      `recomputed ${summary.factRows} IP-days and the decisions of ${summary.asOfDates.length} as-of dates`,
      ...(asOf !== sndsDay ? [`deciding as of ${asOf}, the day of the IP Status download (SNDS data ends ${sndsDay})`] : []),
      '',
      decisionsTable(decisions, asOf, ctx.config.thresholds.windowDays).trimEnd(),
      ...(statusDay && statusDay > asOf ? ['', `note: IP Status list of ${statusDay} is newer than ${asOf}: not used here`] : []),
    ].join('\n');
  },
};
