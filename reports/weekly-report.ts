import { mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from '../db/connection.js';
import type { Config } from '../config/schema.js';
import { renderVolumeAndRate } from './charts.js';
import { loadWeeklyData } from './load-weekly-data.js';
import { renderDecisionsCsv } from './render-csv.js';
import { renderHtml, type RenderedCharts } from './render-html.js';
import { renderMarkdown } from './render-markdown.js';
import { periodEnding, reportBaseName, type ReportPeriod } from './week.js';
import type { WeeklyReportData } from './weekly-data.js';

export const REPORT_FORMATS = ['html', 'md', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface WeeklyReport {
  period: ReportPeriod;
  data: WeeklyReportData;
  html: string;
  markdown: string;
  /** The Markdown's layout as plain text (the e-mail's text/plain part). */
  text: string;
  csv: string;
  json: string;
}

/** Build the weekly report for the seven days ending with `asOf`: data, charts, every rendering. */
export async function buildWeeklyReport(database: Database, config: Config, asOf: string, now: Date): Promise<WeeklyReport> {
  const period = periodEnding(asOf);
  const data = await loadWeeklyData(database, config, period, now);
  const thresholds = { warn: config.thresholds.complaintRateWarn, max: config.thresholds.complaintRateMax };
  const charts: RenderedCharts = { ips: new Map(), pools: new Map() };
  // Sequential on purpose: vega's rendering is CPU-bound, parallel promises only add memory.
  for (const chart of data.charts.ips) {
    charts.ips.set(chart.ip, await renderVolumeAndRate(chart.days, { title: chart.ip, thresholds }));
  }
  for (const pool of data.charts.pools) {
    charts.pools.set(pool.pool, await renderVolumeAndRate(pool.days, { title: `pool ${pool.pool}`, thresholds, width: 640 }));
  }
  return {
    period,
    data,
    html: renderHtml(data, charts),
    markdown: renderMarkdown(data),
    text: renderMarkdown(data, 'text'),
    csv: renderDecisionsCsv(data),
    json: `${JSON.stringify(data, null, 2)}\n`,
  };
}

/** Write the chosen formats into `outDir`; each file appears whole (written aside, then renamed). */
export async function writeWeeklyReport(report: WeeklyReport, outDir: string, formats: readonly ReportFormat[]): Promise<Record<ReportFormat, string | undefined>> {
  await mkdir(outDir, { recursive: true });
  const base = reportBaseName(report.period);
  const contents: Record<ReportFormat, [string, string]> = {
    html: [`${base}.html`, report.html],
    md: [`${base}.md`, report.markdown],
    csv: [`${base}-decisions.csv`, report.csv],
    json: [`${base}.json`, report.json],
  };
  const written: Record<ReportFormat, string | undefined> = { html: undefined, md: undefined, csv: undefined, json: undefined };
  for (const format of formats) {
    const [name, text] = contents[format];
    const path = join(outDir, name);
    await writeFile(`${path}.tmp`, text, 'utf8');
    await rename(`${path}.tmp`, path);
    written[format] = path;
  }
  return written;
}
