import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../support/backends.js';
import { runCliCaptured } from '../support/run-cli.js';
import { fixedClock } from '../../lib/clock.js';
import { tempDir, writeConfig } from './process-harness.js';
import { generateReports, mboxEntry } from '../../bench/generate-reports.js';

/** `repwatch run` and `status` in-process, with an injected clock: exit codes and output. */
for (const backend of backends()) {
  const label = backend.available ? `run and status verbs [${backend.name}]` : `run and status verbs [${backend.name}: SKIPPED, ${backend.skipReason}]`;
  describe.skipIf(!backend.available)(label, () => {
    let handle: TestDatabase | undefined;
    let env: NodeJS.ProcessEnv;
    let dir: string;
    let config: string;
    let mbox: string;
    beforeAll(async () => {
      dir = tempDir();
      mbox = join(dir, 'later.mbox');
      config = writeConfig(dir, { jmrp: { mailboxes: [{ name: 'inbox', mbox }] }, reports: { outDir: join(dir, 'reports') }, blocklists: { zones: [] } });
      env = { REPWATCH_HOME: dir };
      if (backend.name === 'postgres') {
        handle = await backend.create({ migrated: false });
        env.DATABASE_URL = handle.url!;
      }
    });
    afterAll(async () => {
      await handle?.drop();
    });
    const cli = (args: string[], at: string) => runCliCaptured(['--config', config, ...args], { env, cwd: dir, clock: fixedClock(at) });

    it('names the configured jobs when --job matches none (exit 2)', async () => {
      const result = await cli(['run', '--job', 'nope'], '2026-11-28T06:12:00Z');
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/no configured job matches --job nope; configured: jmrp:inbox, blocklists, report:weekly/);
    });

    it('the blocklists job with blocklists.zones: [] looks nothing up, succeeds, and says why', async () => {
      const result = await cli(['run', '--job', 'blocklists', '--format', 'json'], '2026-11-28T06:00:00Z');
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout).outcomes).toEqual([
        expect.objectContaining({ job: 'blocklists', status: 'succeeded', rowsLoaded: 0, detail: 'no zones configured (blocklists.zones: []): nothing looked up' }),
      ]);
    });

    it('a failing job (its mbox is missing: exit 3, a person must fix the path) is recorded; next run defers it (exit 0); --ignore-backoff retries it now', async () => {
      expect(existsSync(mbox)).toBe(false);
      const first = await cli(['run', '--job', 'jmrp', '--format', 'json'], '2026-11-28T06:12:00Z');
      expect(first.code, first.stderr).toBe(3);
      expect(JSON.parse(first.stdout).outcomes).toEqual([expect.objectContaining({ job: 'jmrp:inbox', period: '2026-11-28T06:10Z', status: 'failed' })]);

      writeFileSync(mbox, [...generateReports({ count: 5, start: '2026-11-25', days: 2 })].map((r) => mboxEntry(r.eml)).join(''));
      const second = await cli(['run', '--job', 'jmrp', '--format', 'json'], '2026-11-28T06:12:30Z');
      expect(second.code).toBe(0);
      expect(JSON.parse(second.stdout).outcomes).toEqual([expect.objectContaining({ status: 'deferred', detail: expect.stringMatching(/next attempt after 2026-11-28T06:13:00/) })]);

      const third = await cli(['run', '--job', 'jmrp:inbox', '--ignore-backoff', '--format', 'json'], '2026-11-28T06:12:40Z');
      expect(third.code, third.stderr).toBe(0);
      expect(JSON.parse(third.stdout).outcomes).toEqual([expect.objectContaining({ status: 'succeeded', rowsLoaded: 5 })]);
    });

    it('status reports the job and exits 0 while nothing is stale, 1 once the job falls behind', async () => {
      const ok = await cli(['status', '--format', 'json'], '2026-11-28T06:14:00Z');
      const report = JSON.parse(ok.stdout);
      expect(report.jobs.find((j: { job: string }) => j.job === 'jmrp:inbox')).toMatchObject({ state: 'ok', lastSuccessPeriod: '2026-11-28T06:10Z', lastFailurePeriod: '2026-11-28T06:10Z' });
      expect(report.mailboxes).toEqual([expect.objectContaining({ mailbox: 'inbox', kind: 'mbox', backlog: null })]);
      expect(ok.code, JSON.stringify(report.problems)).toBe(report.problems.length ? 1 : 0);
      expect(report.problems.filter((p: string) => p.startsWith('jmrp:'))).toEqual([]);

      const later = await cli(['status', '--format', 'table'], '2026-11-28T09:00:00Z');
      expect(later.code).toBe(1);
      expect(later.stdout).toMatch(/jmrp:inbox\s+stale/);
      expect(later.stdout).toMatch(/PROBLEM: jmrp:inbox: period 2026-11-28T08:00Z/);
    });
  });
}
