import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { defaultConfig } from '../../../config/load-config.js';
import { fixedClock } from '../../../lib/clock.js';
import { ingestSndsFiles } from '../../../ingest/snds/ingest-files.js';
import { pendingDays } from '../../../transform/recompute.js';
import { dataExport } from './snds-server.js';

/**
 * A status-only ingest brings the decisions up to date: decisions of as-of date D use the latest IP
 * Status download on or before D, so a new list changes `blocked` from its fetch date on, although it
 * touches no IP Data day.
 */

const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-status-'));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const config = defaultConfig();
const IP = '10.3.0.7';

describeEachBackend('SNDS IP Status loads recompute the decisions they change', (db) => {
  const load = (at: string, files: { kind: 'ip_data' | 'ip_status'; path: string }[]) =>
    ingestSndsFiles({ database: db(), config, clock: fixedClock(at), feed: 'main', timezone: 'UTC', files });
  const flags = async () =>
    Object.fromEntries(
      (await db().query<{ as_of: string; blocked: boolean }>(`select as_of::text as as_of, blocked from analytics.ip_flag where ip = $1::inet order by as_of`, [IP])).map((r) => [
        r.as_of,
        r.blocked,
      ]),
    );

  it('a status file blocking an IP makes the latest decision say blocked, with no other command', async () => {
    // Data for three days (the last one is today), loaded with its recompute: nothing blocked.
    const days = ['2026-11-25', '2026-11-26', '2026-11-27'];
    await load('2026-11-27T06:00:00Z', [{ kind: 'ip_data', path: write('data.csv', days.map((d) => dataExport(d, [IP, '10.3.1.1'])).join('')) }]);
    expect(await flags()).toEqual({ '2026-11-25': false, '2026-11-26': false, '2026-11-27': false });

    // The block list, fetched on 2026-11-27: only status, no IP Data day touched.
    const status = await load('2026-11-27T09:00:00Z', [{ kind: 'ip_status', path: write('status.csv', `${IP},${IP},Yes,Blocked due to user complaints or other evidence of spamming\r\n`) }]);
    expect(status.inputs.map((i) => i.outcome)).toEqual(['loaded']);
    expect(status.days).toEqual([]);
    // As-of dates before the list was fetched keep the list they had (none).
    expect(await flags()).toEqual({ '2026-11-25': false, '2026-11-26': false, '2026-11-27': true });
    expect(await db().query(`select host(ip) as ip from analytics.ip_flag where as_of = '2026-11-27' and blocked`)).toEqual([{ ip: IP }]);
    // Nothing is left waiting.
    expect((await pendingDays(db())).days).toBe(0);
  });

  it('an empty status list unblocks from its fetch date on', async () => {
    const status = await load('2026-11-27T12:00:00Z', [{ kind: 'ip_status', path: write('empty.csv', '') }]);
    expect(status.inputs.map((i) => i.outcome)).toEqual(['empty']);
    expect(await flags()).toEqual({ '2026-11-25': false, '2026-11-26': false, '2026-11-27': false });
  });

  it('the affected days are noted as pending in the load transaction, so a recompute that never ran is caught up', async () => {
    // skipRecompute: as if the process died after the status load committed.
    await ingestSndsFiles({
      database: db(),
      config,
      clock: fixedClock('2026-11-26T10:00:00Z'),
      feed: 'main',
      timezone: 'UTC',
      files: [{ kind: 'ip_status', path: write('again.csv', `${IP},${IP},True,SpamHaus SBL/XBL\r\n`) }],
      skipRecompute: true,
    });
    const pending = await db().query<{ day: string }>(`select day::text as day from repwatch.recompute_pending order by day`);
    expect(pending.map((p) => p.day)).toEqual(['2026-11-26', '2026-11-27']);
    await db().query('delete from repwatch.recompute_pending');
  });

  it('a status list newer than every known day notes nothing', async () => {
    await ingestSndsFiles({
      database: db(),
      config,
      clock: fixedClock('2026-12-05T10:00:00Z'),
      feed: 'main',
      timezone: 'UTC',
      files: [{ kind: 'ip_status', path: write('later.csv', `${IP},${IP},Yes,SpamHaus SBL/XBL\r\n10.3.1.0,10.3.1.9,Yes,x\r\n`) }],
      skipRecompute: true,
    });
    expect((await pendingDays(db())).days).toBe(0);
  });
});
