import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Papa from 'papaparse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/connection.js';
import { migrate } from '../../db/migrate.js';
import { backends } from '../support/backends.js';
import { runCliCaptured } from '../support/run-cli.js';
import { Fixture } from './fixture.js';
import { AS_OF, EXPECTED_FLAGS, seedDataset } from './dataset.js';
import { FLAG_KEYS } from '../../transform/decisions.js';
import { fixedClock } from '../../lib/clock.js';

/** The CLI against each backend: PostgreSQL through DATABASE_URL, PGlite through REPWATCH_HOME. */
for (const backend of backends()) {
  const label = backend.available ? backend.name : `${backend.name}: SKIPPED, ${backend.skipReason}`;
  describe.skipIf(!backend.available)(`repwatch flags and transform [${label}]`, () => {
    let env: NodeJS.ProcessEnv = {};
    let drop: () => Promise<void> = async () => undefined;

    beforeAll(async () => {
      const home = mkdtempSync(join(tmpdir(), 'repwatch-flags-'));
      if (backend.name === 'postgres') {
        const handle = await backend.create();
        await seedDataset(new Fixture(handle.database));
        env = { DATABASE_URL: handle.url!, REPWATCH_HOME: home };
        drop = handle.drop;
      } else {
        const database = await openDatabase({ home });
        await migrate(database);
        await seedDataset(new Fixture(database));
        await database.close();
        env = { REPWATCH_HOME: home };
      }
      // The loaders were bypassed, so nothing has been recomputed yet: this is what the verb is for.
      const rebuilt = await runCliCaptured(['transform', '--rebuild'], { env });
      expect(rebuilt.stderr).toBe('');
      expect(rebuilt.code).toBe(0);
      expect(rebuilt.stdout).toMatch(/recomputed facts for all days \(\d+ IP-days\) and decisions for 30 as-of date\(s\) \(2026-10-23 … 2026-11-21\)/);
    });
    afterAll(() => drop());

    it('prints JSON with exactly the fixed keys, most urgent first', async () => {
      const result = await runCliCaptured(['flags', '--as-of', AS_OF, '--format', 'json'], { env });
      expect(result.code).toBe(0);
      const flags = JSON.parse(result.stdout) as Record<string, unknown>[];
      expect(flags).toEqual(EXPECTED_FLAGS);
      for (const flag of flags) expect(Object.keys(flag)).toEqual([...FLAG_KEYS]);
    });

    it('prints CSV with a header of the same keys', async () => {
      const result = await runCliCaptured(['flags', '--format', 'csv', '--as-of', AS_OF], { env });
      expect(result.code).toBe(0);
      const parsed = Papa.parse<Record<string, string>>(result.stdout.trim(), { header: true });
      expect(parsed.meta.fields).toEqual([...FLAG_KEYS]);
      expect(parsed.data.map((r) => [r.ip, r.status, r.reasons, r.route])).toEqual(
        EXPECTED_FLAGS.map((f) => [f.ip, f.status, f.reasons.join(';'), f.route ?? '']),
      );
    });

    it('prints a table that fits 80 columns, sorted by urgency, with reasons and routes, and notes a newer block list', async () => {
      const result = await runCliCaptured(['flags', '--format', 'table', '--as-of', AS_OF], { env });
      expect(result.code).toBe(0);
      const lines = result.stdout.trimEnd().split('\n');
      for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
      expect(lines[0]).toBe('Decisions as of 2026-11-20 (window 2026-11-14 … 2026-11-20, 7 days): 17 IPs');
      expect(lines[1]).toBe('2 start_delisting · 4 fix_first · 7 at_risk · 2 ok · 2 no_data');
      // Message recipients over the window, not RCPT commands.
      expect(lines[3]).toMatch(/^IP +STATUS +RECIP 7D +COMPL +RATE %/);
      const statusOrder = lines.map((l) => /^\d+\.\d+\.\d+\.\d+\s+(start_delisting|fix_first|at_risk|ok|no_data)\s/.exec(l)?.[1]).filter(Boolean);
      expect(statusOrder).toEqual(EXPECTED_FLAGS.map((f) => f.status));
      expect(result.stdout).toMatch(/198\.51\.100\.10 +start_delisting +7,000 +0 +0\.000 +0 +0 +0\n +why: reputation_deferral; route: office365_portal \(also\n +delist_email\)\n/);
      expect(result.stdout).toMatch(/198\.51\.100\.9 +fix_first .*\n +why: trap_hits, red_filter; route: outlook_form\n/);
      expect(result.stdout).toMatch(/198\.51\.100\.15 +at_risk +0 +2 +- +0 +0 +0\n +why: complaints_without_volume\n/);
      expect(result.stdout).toMatch(/note: IP Status list of 2026-11-21 is newer than 2026-11-20: not used here;\n +run with --as-of 2026-11-21/);
      // Every day of the window has SNDS data: no coverage note.
      expect(result.stdout).not.toMatch(/SNDS data covers/);
    });

    it('refuses an as-of date after today (the clock\'s UTC day) with exit 2, and accepts today', async () => {
      const clock = fixedClock(`${AS_OF}T23:30:00Z`);
      const future = await runCliCaptured(['flags', '--as-of', '2026-11-21', '--format', 'json'], { env, clock });
      expect(future.code).toBe(2);
      expect(future.stdout).toBe('');
      expect(future.stderr).toMatch(new RegExp(`--as-of 2026-11-21 is after today \\(${AS_OF}, UTC\\)`));
      const today = await runCliCaptured(['flags', '--as-of', AS_OF, '--format', 'json'], { env, clock });
      expect(today.code).toBe(0);
      expect(JSON.parse(today.stdout)).toEqual(EXPECTED_FLAGS);
    });

    it('exits 2 on a bad date or format, and transform without a scope', async () => {
      expect((await runCliCaptured(['flags', '--as-of', '2026-02-30'], { env })).code).toBe(2);
      expect((await runCliCaptured(['flags', '--format', 'xml'], { env })).code).toBe(2);
      const bare = await runCliCaptured(['transform'], { env });
      expect(bare.code).toBe(2);
      expect(bare.stderr).toMatch(/--rebuild, --pending, --day/);
    });

    it('recomputes chosen days with transform --day and --from/--to', async () => {
      const one = await runCliCaptured(['transform', '--day', '2026-11-19'], { env });
      expect(one.code).toBe(0);
      expect(one.stdout).toMatch(/facts for 1 day\(s\) .* decisions for 3 as-of date\(s\) \(2026-11-19 … 2026-11-21\)/);
      const range = await runCliCaptured(['transform', '--from', '2026-11-01', '--to', '2026-11-03'], { env });
      expect(range.code).toBe(0);
      expect(range.stdout).toMatch(/facts for 3 day\(s\)/);
      const nothing = await runCliCaptured(['transform', '--pending'], { env });
      expect(nothing.code).toBe(0);
      expect(nothing.stdout).toMatch(/facts for 0 day\(s\)/);
      const json = await runCliCaptured(['flags', '--as-of', AS_OF, '--format', 'json'], { env });
      expect(JSON.parse(json.stdout)).toEqual(EXPECTED_FLAGS);
    });

    // Last: it stores decisions for another as-of date, which the transform tests above would recompute.
    it('a table whose window has days without SNDS data says so, naming the latest day that has data', async () => {
      const later = await runCliCaptured(['flags', '--format', 'table', '--as-of', '2026-11-21'], { env, clock: fixedClock('2026-11-22T06:00:00Z') });
      expect(later.code).toBe(0);
      expect(later.stdout).toMatch(/note: SNDS data covers 6 of the window's 7 days; days without\n +data count as clean here \(start_delisting may be early\): the latest\n +day with data from every feed is 2026-11-20\.\n/);
      for (const line of later.stdout.trimEnd().split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    });

    // Also after the transform tests, for the same reason.
    it('defaults to the day of an IP Status list newer than the SNDS data (within the window), saying which days lack SNDS data', async () => {
      const clock = fixedClock('2026-11-22T06:00:00Z');
      const table = await runCliCaptured(['flags', '--format', 'table'], { env, clock });
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^Decisions as of 2026-11-21 \(window 2026-11-15 … 2026-11-21, 7 days\)/);
      expect(table.stdout).not.toMatch(/is newer than/);
      expect(table.stdout).toMatch(/note: SNDS data covers 6 of the window's 7 days/);
      const byDefault = await runCliCaptured(['flags', '--format', 'json'], { env, clock });
      const explicit = await runCliCaptured(['flags', '--format', 'json', '--as-of', '2026-11-21'], { env, clock });
      expect(JSON.parse(byDefault.stdout)).toEqual(JSON.parse(explicit.stdout));
      // With today before that download (a clock set back), the latest SNDS day.
      const earlier = await runCliCaptured(['flags', '--format', 'json'], { env, clock: fixedClock('2026-11-20T23:00:00Z') });
      expect(JSON.parse(earlier.stdout)).toEqual(EXPECTED_FLAGS);
    });
  });
}

describe('repwatch flags on an empty embedded database', () => {
  it('exits 1 and says to load SNDS data first', async () => {
    const home = mkdtempSync(join(tmpdir(), 'repwatch-flags-empty-'));
    const result = await runCliCaptured(['flags', '--format', 'json'], { env: { REPWATCH_HOME: home } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no SNDS data yet/);
    expect(result.stdout).toBe('');
  });
});
