import { join } from 'node:path';
import type { DemoStep } from '../run-demo.js';
import { SAMPLE_LAST_DAY, sampleDir } from '../generate-sample.js';
import { fixedClock } from '../../lib/clock.js';
import { ingestSndsFiles } from '../../ingest/snds/ingest-files.js';
import { recomputeDays } from '../../transform/recompute.js';

/**
 * The bundled SNDS sample (demo/sample/snds-ip-data.csv and snds-ip-status.csv, 30 days x 20 IPs)
 * through the same file path as `repwatch ingest snds --file`: stored as received, parsed, loaded
 * under the feed "demo" (UTC), then the facts of the days it touched are recomputed.
 */
export const sndsStep: DemoStep = {
  name: 'SNDS: IP Data and IP Status exports',
  async run(ctx) {
    const database = await ctx.database();
    const result = await ingestSndsFiles({
      database,
      config: ctx.config,
      // The sample's IP Status export stands for the block list as downloaded on the sample's last
      // day, so the decisions of that day ("latest download on or before D") use it.
      clock: fixedClock(`${SAMPLE_LAST_DAY}T18:00:00Z`),
      feed: 'demo',
      timezone: 'UTC',
      files: [
        { kind: 'ip_data', path: join(sampleDir(), 'snds-ip-data.csv') },
        { kind: 'ip_status', path: join(sampleDir(), 'snds-ip-status.csv') },
      ],
      skipRecompute: true,
    });
    if (result.failures.length) throw new Error(`demo SNDS sample: ${result.failures.join('; ')}`);
    if (result.days.length) await recomputeDays(database, ctx.config, result.days);
    const [data, status] = result.inputs;
    const [stats] = await database.query<{ ips: number; red: number; yellow: number; traps: number; recipients: number }>(
      `select count(distinct ip)::int as ips,
              count(*) filter (where filter_result = 'RED')::int as red,
              count(*) filter (where filter_result = 'YELLOW')::int as yellow,
              coalesce(sum(trap_hits), 0)::int as traps,
              coalesce(sum(message_recipients), 0)::bigint as recipients
         from repwatch.snds_row where feed = 'demo'`,
    );
    const blocked = await database.query<{ range: string }>(
      `select case when first_ip = last_ip then host(first_ip) else host(first_ip) || '-' || host(last_ip) end as range from analytics.ip_status order by first_ip`,
    );
    const first = result.days[0];
    const last = result.days.at(-1);
    const reused = data?.outcome === 'duplicate' ? ' (already loaded: identical content recognised, not parsed again)' : '';
    return (
      `IP Data: ${data?.rowsLoaded ?? 0} rows loaded${reused}, ${data?.rowsReplaced ?? 0} replaced, ${data?.rowsRejected ?? 0} rejected` +
      `${first ? `, ${result.days.length} days ${first} to ${last}` : ''}; in the warehouse ${stats?.ips ?? 0} IPs, ` +
      `${Number(stats?.recipients ?? 0).toLocaleString('en')} recipients, ${stats?.red ?? 0} RED and ${stats?.yellow ?? 0} YELLOW IP-days, ${stats?.traps ?? 0} trap hits. ` +
      `IP Status: ${status?.outcome ?? 'not loaded'}, blocked now: ${blocked.map((b) => b.range).join(', ') || 'none'}.`
    );
  },
};
