import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { describeEachBackend } from '../support/backends.js';
import { configSchema } from '../../config/schema.js';
import { buildWeeklyReport } from '../../reports/weekly-report.js';
import { AS_OF, HOSTILE, insertFixture } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const available = existsSync(CHROMIUM);
const title = available ? 'weekly report in headless Chromium' : `weekly report in headless Chromium: SKIPPED, ${CHROMIUM} IS MISSING (CI installs it)`;

describeEachBackend(title, (db, backend) => {
  let context: BrowserContext;
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-browser-'));
  let html = '';

  beforeAll(async () => {
    if (!available) return;
    await insertFixture(db());
    const config = configSchema.parse({ pools: { customers: ['203.0.113.0/24'] } });
    html = (await buildWeeklyReport(db(), config, AS_OF, new Date('2026-11-23T07:00:00Z'))).html;
    // A fresh profile per run: nothing cached, nothing synced.
    context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 390, height: 844 } });
  });
  afterAll(async () => {
    await context?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Open a page, counting console errors, page errors, dialogs and any request that is not the file. */
  async function open(file: string) {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('request', (r) => r.url() !== pathToFileURL(file).href && problems.push(`request: ${r.url()}`));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    await page.waitForTimeout(200); // let onerror/onload handlers fire if any were there
    return { page, problems };
  }

  it.skipIf(!available)('renders with no console error, no script run, no request, hostile strings shown as text', async () => {
    const file = join(dir, 'report.html');
    writeFileSync(file, html);
    const { page, problems } = await open(file);
    expect(problems).toEqual([]);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    const text = await page.evaluate<string>('document.body.innerText');
    for (const value of [HOSTILE.campaign, HOSTILE.subject, HOSTILE.fromDomain, HOSTILE.details, HOSTILE.mailbox]) expect(text).toContain(value);
    expect(await page.locator('script, img, iframe').count()).toBe(0);
    expect(await page.locator('svg.marks').count()).toBe(7);
    // Readable on a phone: the page itself does not scroll sideways (wide tables scroll in their box).
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `weekly-report-phone-${backend.name}.png`), fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.screenshot({ path: join(ARTIFACTS, `weekly-report-desktop-${backend.name}.png`), fullPage: false });
    await page.emulateMedia({ media: 'print' });
    const pdf = await page.pdf({ format: 'A4' });
    expect(pdf.subarray(0, 4).toString()).toBe('%PDF');
    await page.close();
  });

  it.skipIf(!available)('stays inert even without its Content-Security-Policy: the escaping alone holds', async () => {
    const file = join(dir, 'report-no-csp.html');
    const withoutCsp = html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '');
    expect(withoutCsp).not.toBe(html);
    writeFileSync(file, withoutCsp);
    const { page, problems } = await open(file);
    expect(problems).toEqual([]);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.evaluate<string>('document.body.innerText')).toContain(HOSTILE.campaign);
    await page.close();
  });
});
