import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createContext } from '../../cli/context.js';
import { fixedClock } from '../../lib/clock.js';
import { bouncesStep } from '../../demo/steps/bounces.js';

describe('demo step: bounces', () => {
  const home = mkdtempSync(join(tmpdir(), 'repwatch-demo-bounces-'));
  const ctx = createContext({ logLevel: 'silent' }, { env: { REPWATCH_HOME: home }, cwd: home, clock: fixedClock('2026-11-25T07:00:00Z'), stdout: new PassThrough(), stderr: new PassThrough() });
  afterAll(() => ctx.close());

  it('loads the sample bounces and prints the evidence and the drafts; a second run stores nothing new', async () => {
    const first = await bouncesStep.run(ctx);
    expect(first).toMatch(/^\d+ bounces read: \d+ stored/);
    expect(first).toMatch(/203\.0\.113\.13 +block +outlook_form/);
    expect(first).toMatch(/198\.51\.100\.27 +block +office365_portal/);
    expect(first).toMatch(/198\.51\.100\.24 +block +delist_email/);
    expect(first).toMatch(/203\.0\.113\.16 +warning reputation_deferral/);
    expect(first).toMatch(/203\.0\.113\.11 +warning auth_requirements/);
    expect(first).toMatch(/draft for 203\.0\.113\.13 as of 2026-11-24: outlook_form \(203\.0\.113\.13\)/);
    expect(first).toMatch(/draft for 198\.51\.100\.24 as of 2026-11-24: delist_email \(forward stored NDR #\d+\)/);
    const second = await bouncesStep.run(ctx);
    expect(second).toMatch(/: 0 stored .*, \d+ already stored, 0 quarantined; 0 block evidence rows/);
  });
});
