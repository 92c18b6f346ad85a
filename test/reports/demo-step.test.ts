import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../support/backends.js';
import { createContext, type CommandContext } from '../../cli/context.js';
import { openDatabase } from '../../db/connection.js';
import { migrate } from '../../db/migrate.js';
import { fixedClock } from '../../lib/clock.js';
import { reportStep } from '../../demo/steps/report.js';
import { insertFixture } from './fixture.js';

for (const backend of backends()) {
  const label = backend.available ? `demo step "weekly report" [${backend.name}]` : `demo step "weekly report" [${backend.name}: SKIPPED, ${backend.skipReason}]`;
  describe.skipIf(!backend.available)(label, () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-demo-report-'));
    let handle: TestDatabase | undefined;
    let ctx: CommandContext;
    beforeAll(async () => {
      const env: NodeJS.ProcessEnv = { REPWATCH_HOME: join(dir, 'home') };
      if (backend.name === 'postgres') {
        handle = await backend.create();
        await insertFixture(handle.database);
        env.DATABASE_URL = handle.url;
      } else {
        const database = await openDatabase({ home: env.REPWATCH_HOME });
        await migrate(database);
        await insertFixture(database);
        await database.close();
      }
      ctx = createContext({ logLevel: 'silent' }, { env, cwd: dir, clock: fixedClock('2026-11-30T12:00:00Z'), stdout: new PassThrough(), stderr: new PassThrough() });
    });
    afterAll(async () => {
      await ctx?.close();
      await handle?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('writes the report for the 7 days ending with the latest data day into reports.outDir and ends with the HTML path', async () => {
      const summary = await reportStep.run(ctx);
      const last = summary.trim().split('\n').at(-1)!;
      const path = last.replace(/^open the report: /, '');
      expect(path).toBe(join(dir, 'home', 'reports', 'repwatch-weekly-2026-W47.html'));
      expect(existsSync(path)).toBe(true);
      expect(readFileSync(path, 'utf8')).toContain('repwatch weekly report — 2026-W47');
      expect(summary).toMatch(/^7 days to 2026-11-22: 1 to start delisting, 1 to fix first, 1 at risk, 2 ok/);
    });
  });
}
