/** A numbered schema change. SQL only, written to be re-runnable (IF NOT EXISTS, CREATE OR REPLACE),
 * applied in one transaction and recorded in repwatch.schema_migration. */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}
