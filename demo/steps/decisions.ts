import type { DemoStep } from '../run-demo.js';
import { utcDay } from '../../lib/clock.js';
import { rebuildAll } from '../../transform/recompute.js';
import { computeDecisions, decisionDates } from '../../transform/decisions.js';
import { decisionsTable } from '../../transform/decisions-table.js';

/**
 * After the SNDS and JMRP steps: recompute facts and decisions from everything loaded, then print the
 * decisions table for the date `repwatch flags` uses by default (defaultDecisionDate: the latest SNDS
 * day, or the day of a newer IP Status download within the window).
 */
export const decisionsStep: DemoStep = {
  name: 'decisions',
  async run(ctx) {
    const database = await ctx.database();
    const summary = await rebuildAll(database, ctx.config);
    const { asOf, sndsDay, statusDay } = await decisionDates(database, utcDay(ctx.clock.now()), ctx.config.thresholds.windowDays);
    if (!asOf) return 'no SNDS data loaded: no decisions';
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
