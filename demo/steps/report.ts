import type { DemoStep } from '../run-demo.js';
import { buildWeeklyReport, writeWeeklyReport, REPORT_FORMATS } from '../../reports/weekly-report.js';

/**
 * The demo's last step: the weekly report for the seven days ending with the latest day of the sample
 * data, every format, into reports.outDir. Its summary ends with the path of the HTML file.
 */
export const reportStep: DemoStep = {
  name: 'weekly report',
  async run(ctx) {
    const database = await ctx.database();
    const [latest] = await database.query<{ day: string | null }>(`select max(day) as day from analytics.ip_day where message_recipients is not null`);
    if (!latest?.day) return 'no SNDS data loaded: no report written';
    const report = await buildWeeklyReport(database, ctx.config, latest.day, ctx.clock.now());
    const written = await writeWeeklyReport(report, ctx.config.reports.outDir!, REPORT_FORMATS);
    const counts = report.data.headline.statusCounts;
    return [
      `7 days to ${report.period.to}: ${counts.start_delisting} to start delisting, ${counts.fix_first} to fix first, ${counts.at_risk} at risk, ${counts.ok} ok`,
      `also written: ${[written.md, written.csv, written.json].join(', ')}`,
      `open the report: ${written.html}`,
    ].join('\n');
  },
};
