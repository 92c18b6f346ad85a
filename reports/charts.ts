import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { SeriesDay } from './weekly-data.js';

/**
 * Charts are declared as vega-lite specs and rendered to SVG on the server by vega's own SVG string
 * renderer (renderer 'none' + toSVG: no DOM, no canvas). The data is passed inline and the loader
 * refuses every URL, so rendering never touches the network. Vega escapes its text marks; on top of
 * that every SVG is checked before it is embedded (no script, no event handler, no external reference).
 */

export interface ChartOptions {
  title: string;
  thresholds: { warn: number; max: number };
  width?: number;
  height?: number;
}

/**
 * Daily volume (bars, left axis) and complaint rate (line, right axis) with the threshold lines. The
 * days come in as the named dataset "days" and the title as the signal "chart_title", so one compiled
 * chart serves every IP and pool of a report (compiling is most of the cost of a chart).
 */
export function volumeAndRateSpec(options: Omit<ChartOptions, 'title'>): TopLevelSpec {
  const x = { field: 'day', type: 'temporal' as const, timeUnit: 'utcyearmonthdate' as const, title: null, axis: { format: '%d %b', labelAngle: 0, labelOverlap: true } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    params: [{ name: 'chart_title', value: '' }],
    title: { text: { expr: 'chart_title' }, anchor: 'start', fontSize: 13 },
    width: options.width ?? 520,
    height: options.height ?? 140,
    background: 'white',
    data: { name: 'days' },
    resolve: { scale: { y: 'independent' } },
    layer: [
      {
        mark: { type: 'bar', color: '#9ecae1' },
        encoding: { x, y: { field: 'recipients', type: 'quantitative', title: 'recipients', axis: { format: '~s', titleColor: '#3182bd' } } },
      },
      {
        layer: [
          {
            mark: { type: 'line', color: '#d62728', point: { size: 18, color: '#d62728' } },
            encoding: {
              x,
              y: { field: 'rate', type: 'quantitative', title: 'complaint rate', axis: { format: '.2%', orient: 'right', titleColor: '#d62728' }, scale: { zero: true } },
            },
          },
          {
            data: { values: [{ y: options.thresholds.warn, label: `warn ${pct(options.thresholds.warn)}` }, { y: options.thresholds.max, label: `max ${pct(options.thresholds.max)}` }] },
            // Same y scale as the rate line: the domain always takes in both thresholds and every rate.
            layer: [
              { mark: { type: 'rule', strokeDash: [4, 3], color: '#e6550d' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
              { mark: { type: 'text', align: 'left', dx: 2, dy: -5, x: 0, fontSize: 9, color: '#e6550d' }, encoding: { y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } } },
            ],
          },
        ],
      },
    ],
    // No per-point ARIA labels: they double the size of every chart, and the tables carry the numbers.
    config: { aria: false, font: 'sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 9, titleFontSize: 10 } },
  } as TopLevelSpec;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(2).replace(/\.?0+$/, '')}%`;
}

/** A loader that fails every request and remembers it: charts are built from inline data only. */
function offlineLoader(attempts: string[]): vega.Loader {
  const loader = vega.loader();
  const refuse = async (uri: string) => {
    attempts.push(uri);
    throw new Error(`chart rendering must not load anything (${uri})`);
  };
  loader.load = refuse as vega.Loader['load'];
  loader.sanitize = refuse as vega.Loader['sanitize'];
  loader.http = refuse as vega.Loader['http'];
  loader.file = refuse as vega.Loader['file'];
  return loader;
}

const compiled = new Map<string, vega.Runtime>();

/** Render one volume-and-rate chart to an SVG string (compiled once per size and thresholds). */
export async function renderVolumeAndRate(days: SeriesDay[], options: ChartOptions): Promise<string> {
  const { title, ...shape } = options;
  const key = JSON.stringify(shape);
  let runtime = compiled.get(key);
  if (!runtime) {
    runtime = vega.parse(compile(volumeAndRateSpec(shape)).spec);
    compiled.set(key, runtime);
  }
  return toSafeSvg(runtime, (view) => {
    view.signal('chart_title', title);
    view.data('days', days.map((d) => ({ day: `${d.day}T00:00:00Z`, recipients: d.recipients, rate: d.complaintRate })));
  });
}

/** Render any vega-lite spec the same way (offline loader, safety check). */
export function renderSvg(spec: TopLevelSpec): Promise<string> {
  return toSafeSvg(vega.parse(compile(spec).spec));
}

async function toSafeSvg(runtime: vega.Runtime, prepare?: (view: vega.View) => void): Promise<string> {
  const attempts: string[] = [];
  // Vega only logs a failed load and draws an empty chart; a chart that tried to load is an error here.
  const view = new vega.View(runtime, { renderer: 'none', loader: offlineLoader(attempts), logLevel: vega.Error });
  try {
    prepare?.(view);
    const svg = await view.toSVG();
    if (attempts.length) throw new Error(`chart rendering must not load anything (${attempts.join(', ')})`);
    return assertSafeSvg(svg);
  } finally {
    view.finalize();
  }
}

const UNSAFE_SVG = [/<script/i, /<foreignObject/i, /\son[a-z]+\s*=/i, /(?:xlink:)?href\s*=\s*["'](?!#)/i, /url\(\s*["']?(?!#)/i, /javascript:/i];

/** Refuse an SVG that could run or load anything, whatever produced it. */
export function assertSafeSvg(svg: string): string {
  for (const pattern of UNSAFE_SVG) {
    if (pattern.test(svg)) throw new Error(`generated SVG failed the safety check (${pattern})`);
  }
  return svg;
}

/** A tiny inline sparkline (the one home-made chart): a polyline of daily values, gaps left open. */
export function sparkline(values: (number | null)[], width = 90, height = 18): string {
  const present = values.filter((v): v is number => v !== null);
  const max = Math.max(...present, 0);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const segments: string[][] = [[]];
  values.forEach((v, i) => {
    if (v === null) {
      if (segments.at(-1)!.length) segments.push([]);
      return;
    }
    const y = max > 0 ? height - 1 - (v / max) * (height - 2) : height - 1;
    segments.at(-1)!.push(`${(i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  const lines = segments.filter((s) => s.length).map((s) => `<polyline points="${s.join(' ')}" fill="none" stroke="#3182bd" stroke-width="1.2"/>`);
  return `<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" aria-hidden="true">${lines.join('')}</svg>`;
}
