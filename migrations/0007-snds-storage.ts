import type { Migration } from './migration.js';

/**
 * SNDS storage, tuned after measuring the 1,000,000-row load (bench/snds.ts):
 * - The complaint band's bounds become double precision. They are only compared and ordered, and
 *   numeric's input function was a measurable share of the server's COPY time; the few values a band
 *   can have (0, 0.001, 0.01, 0.02, 0.04) read back exactly as written.
 * - Raw downloads are compressed with lz4 where the server has it (Debian's and the official packages
 *   do; PGlite does not, and keeps them uncompressed): CSV shrinks about four times, for the same
 *   load time. Chunks already stored stay as they are until rewritten.
 */
export const migration: Migration = {
  id: 7,
  name: 'snds-storage',
  sql: String.raw`
-- The view selects r.*: it is dropped around the change and recreated as 0002 made it.
drop view if exists repwatch.snds_row_timed;
alter table repwatch.snds_row
  alter column complaint_rate_low type double precision,
  alter column complaint_rate_high type double precision;
create view repwatch.snds_row_timed as
  select r.*, d.timezone,
         repwatch.snds_time(r.activity_start_raw, d.timezone) as activity_start,
         repwatch.snds_time(r.activity_end_raw, d.timezone) as activity_end,
         repwatch.snds_time(r.trap_start_raw, d.timezone) as trap_start,
         repwatch.snds_time(r.trap_end_raw, d.timezone) as trap_end
  from repwatch.snds_row r
  join repwatch.raw_download d on d.id = r.download_id;

do $$
begin
  alter table repwatch.raw_download_chunk alter column data set storage extended, alter column data set compression lz4;
exception when feature_not_supported or invalid_parameter_value then
  raise notice 'lz4 is not available on this server: raw downloads stay uncompressed';
end $$;
`,
};
