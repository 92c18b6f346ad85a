import type { Migration } from './migration.js';

/**
 * Kept mail (mail_message.raw) compressed with lz4 where the server has it, as raw SNDS downloads are
 * since 0007. A 2.6 KB report is compressed when stored either way (pglz by default); lz4 took about a
 * sixth less of the server's CPU on the 20,000-report JMRP benchmark. PGlite has no lz4 and keeps the
 * default. Messages already stored stay as they are until rewritten.
 */
export const migration: Migration = {
  id: 9,
  name: 'mail-storage',
  sql: String.raw`
do $$
begin
  alter table repwatch.mail_message alter column raw set compression lz4;
exception when feature_not_supported or invalid_parameter_value then
  raise notice 'lz4 is not available on this server: kept mail is compressed with pglz';
end $$;
`,
};
