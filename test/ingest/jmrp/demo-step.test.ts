import { expect, it } from 'vitest';
import type { CommandContext } from '../../../cli/context.js';
import { configSchema } from '../../../config/schema.js';
import { jmrpStep } from '../../../demo/steps/jmrp.js';
import { fixedClock } from '../../../lib/clock.js';
import { createLogger } from '../../../lib/logger.js';
import { PassThrough } from 'node:stream';
import { describeEachBackend } from '../../support/backends.js';

describeEachBackend('demo step: JMRP sample mailbox', (db) => {
  it('loads demo/sample/jmrp-complaints.mbox through the mbox source and summarises it; a second run adds nothing', async () => {
    const ctx = {
      config: configSchema.parse({}),
      database: async () => db(),
      logger: createLogger({ level: 'silent', destination: new PassThrough() }),
      clock: fixedClock('2026-11-28T06:00:00Z'),
    } as unknown as CommandContext;
    const summary = await jmrpStep.run(ctx);
    expect(summary).toMatch(/messages read: \d+ complaints/);
    const [row] = await db().query<{ n: number; ips: number; days: number }>(
      `select count(*)::int as n, count(distinct source_ip)::int as ips, count(distinct day)::int as days from analytics.complaint where mailbox = 'demo-jmrp'`,
    );
    expect(row!.n).toBeGreaterThan(100);
    expect(row!.ips).toBeGreaterThanOrEqual(10);
    expect(row!.days).toBeGreaterThanOrEqual(20);
    const again = await jmrpStep.run(ctx);
    expect(again).toMatch(/0 complaints/);
    console.log(summary);
  });
});
