import { beforeEach, expect, it } from 'vitest';
import { describeEachBackend } from '../support/backends.js';
import { configSchema } from '../../config/schema.js';
import type { CommandContext } from '../../cli/context.js';
import { fixedClock } from '../../lib/clock.js';
import { decisionsStep } from '../../demo/steps/decisions.js';
import { Fixture, clearTables } from './fixture.js';
import { seedDataset } from './dataset.js';

describeEachBackend('demo step: decisions', (db) => {
  beforeEach(() => clearTables(db()));

  it('recomputes and prints the decisions table, deciding on the day of a block list downloaded just after the SNDS data', async () => {
    await seedDataset(new Fixture(db()));
    const ctx = { config: configSchema.parse({}), database: async () => db(), clock: fixedClock('2026-11-27T06:00:00Z') } as unknown as CommandContext;
    const out = await decisionsStep.run(ctx);
    expect(out).toMatch(/^recomputed \d+ IP-days and the decisions of 30 as-of dates\n/);
    expect(out).toMatch(/deciding as of 2026-11-21, the day of the IP Status download \(SNDS data ends 2026-11-20\)/);
    // On the 21st the newest list blocks only .14 (it replaced the one blocking .7–.9); .10 and .11 stay blocked by bounces.
    expect(out).toMatch(/198\.51\.100\.14 +start_delisting/);
    expect(out).toMatch(/Decisions as of 2026-11-21 \(window 2026-11-15 … 2026-11-21, 7 days\)/);
  });

  it('says so when nothing is loaded', async () => {
    const ctx = { config: configSchema.parse({}), database: async () => db(), clock: fixedClock('2026-11-27T06:00:00Z') } as unknown as CommandContext;
    expect(await decisionsStep.run(ctx)).toBe('no SNDS data loaded: no decisions');
  });
});
