import { describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import type { Database } from '../../db/connection.js';

/** Everything the migrations build, described the same way on both backends. */
async function describeSchema(database: Database): Promise<Record<string, unknown>> {
  const schemas = "('repwatch', 'analytics')";
  const columns = await database.query(
    `select table_schema, table_name, column_name, data_type, is_nullable, column_default
     from information_schema.columns where table_schema in ${schemas}
     order by table_schema, table_name, ordinal_position`,
  );
  const indexes = await database.query(
    `select schemaname, tablename, indexname, indexdef from pg_indexes where schemaname in ${schemas} order by 1, 2, 3`,
  );
  const views = await database.query(
    `select table_schema, table_name from information_schema.views where table_schema in ${schemas} order by 1, 2`,
  );
  const constraints = await database.query(
    `select n.nspname, c.conname, c.contype, pg_get_constraintdef(c.oid) as def
     from pg_constraint c join pg_namespace n on n.oid = c.connamespace
     where n.nspname in ${schemas} and c.contype in ('p', 'u', 'f', 'c') order by 1, 2`,
  );
  return { columns, indexes, views, constraints };
}

const [postgres, pglite] = backends();

describe.skipIf(!postgres!.available)(`schema parity${postgres!.available ? '' : ` [SKIPPED: ${postgres!.skipReason}]`}`, () => {
  it('migrations build the same tables, columns, indexes, views and constraints on PostgreSQL and PGlite', async () => {
    const a = await postgres!.create();
    const b = await pglite!.create();
    try {
      const [onServer, embedded] = await Promise.all([describeSchema(a.database), describeSchema(b.database)]);
      expect((onServer.columns as unknown[]).length).toBeGreaterThan(50);
      expect(embedded).toEqual(onServer);
    } finally {
      await a.drop();
      await b.drop();
    }
  });
});
