import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createContext } from '../../../cli/context.js';
import { fixedClock } from '../../../lib/clock.js';
import { sndsStep } from '../../../demo/steps/snds.js';
import { PassThrough } from 'node:stream';

it('the demo step loads the bundled SNDS sample through the file ingest (embedded database)', async () => {
  const home = mkdtempSync(join(tmpdir(), 'repwatch-snds-demo-'));
  const ctx = createContext({ logLevel: 'silent' }, { env: { REPWATCH_HOME: home }, cwd: home, clock: fixedClock('2026-11-27T06:00:00Z'), stdout: new PassThrough(), stderr: new PassThrough() });
  try {
    const summary = await sndsStep.run(ctx);
    expect(summary).toMatch(/IP Data: \d+ rows loaded, 0 replaced, 0 rejected, \d+ days/);
    expect(summary).toMatch(/blocked now: 198\.51\.100\.27, 203\.0\.113\.12-203\.0\.113\.13|blocked now: 203\.0\.113\.12-203\.0\.113\.13, 198\.51\.100\.27/);
    expect(await sndsStep.run(ctx)).toMatch(/identical content recognised/);
  } finally {
    await ctx.close();
  }
});
