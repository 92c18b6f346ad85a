import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertSafeSvg, renderSvg, renderVolumeAndRate, sparkline } from '../../reports/charts.js';
import type { SeriesDay } from '../../reports/weekly-data.js';

const days: SeriesDay[] = Array.from({ length: 28 }, (_, i) => ({
  day: `2026-11-${String(i + 1).padStart(2, '0')}`,
  recipients: i === 5 ? null : 1000 + i * 10,
  complaints: i,
  complaintRate: i === 5 ? null : i / (1000 + i * 10),
  trapHits: 0,
  filterResult: 'GREEN',
}));

describe('charts (vega-lite rendered to SVG on the server)', () => {
  let server: Server;
  let requests = 0;
  let port = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.end('day,recipients\n2026-11-01,5\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('draws volume, complaint rate and both threshold lines, with the title given', async () => {
    const svg = await renderVolumeAndRate(days, { title: '198.51.100.7', thresholds: { warn: 0.001, max: 0.003 } });
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('>198.51.100.7</text>');
    expect(svg).toContain('>warn 0.1%</text>');
    expect(svg).toContain('>max 0.3%</text>');
    const bars = svg.slice(svg.indexOf('class="mark-rect'), svg.indexOf('class="mark-line'));
    expect(bars.match(/<path /g)).toHaveLength(27); // the null day has no bar
    expect(svg).toContain('complaint rate');
    expect(svg).not.toMatch(/<script|\son[a-z]+=/i);
  });

  it('follows configured thresholds and reuses the compiled chart for another title', async () => {
    const a = await renderVolumeAndRate(days, { title: 'first', thresholds: { warn: 0.002, max: 0.005 } });
    const b = await renderVolumeAndRate(days, { title: 'second', thresholds: { warn: 0.002, max: 0.005 } });
    expect(a).toContain('>warn 0.2%</text>');
    expect(a).toContain('>max 0.5%</text>');
    expect(b).toContain('>second</text>');
    expect(b).not.toContain('>first</text>');
  });

  it('escapes text marks itself (a hostile title shows as text)', async () => {
    const svg = await renderVolumeAndRate(days, { title: '<script>alert(1)</script>', thresholds: { warn: 0.001, max: 0.003 } });
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(svg).not.toContain('<script>');
  });

  it('never loads anything: a spec with a data URL fails and the server sees no request', async () => {
    await expect(
      renderSvg({ data: { url: `http://127.0.0.1:${port}/data.csv` }, mark: 'bar', encoding: { x: { field: 'day', type: 'nominal' }, y: { field: 'recipients', type: 'quantitative' } } }),
    ).rejects.toThrow(/must not load/);
    await expect(renderSvg({ data: { url: '/etc/passwd' }, mark: 'point' })).rejects.toThrow(/must not load/);
    expect(requests).toBe(0);
  });

  it('refuses an SVG that could run or load something', () => {
    expect(() => assertSafeSvg('<svg><script>x</script></svg>')).toThrow();
    expect(() => assertSafeSvg('<svg onload="x"></svg>')).toThrow();
    expect(() => assertSafeSvg('<svg><image href="http://example.com/x.png"/></svg>')).toThrow();
    expect(() => assertSafeSvg('<svg><rect style="fill:url(http://x/y)"/></svg>')).toThrow();
    expect(assertSafeSvg('<svg><g clip-path="url(#clip1)"></g></svg>')).toContain('clip1');
  });

  it('draws a sparkline with gaps for missing days', () => {
    const svg = sparkline([1, 2, null, 4, 5]);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
  });
});
