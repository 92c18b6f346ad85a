import type { Generated } from 'kysely';

/** Tables of migration 0001 (and the runner's own ledger). Dates are YYYY-MM-DD strings, counts numbers. */
export interface CoreTables {
  'repwatch.schema_migration': { id: number; name: string; applied_at: Generated<Date> };
  'repwatch.pipeline_run': {
    id: Generated<number>;
    job: string;
    period: string;
    status: 'running' | 'succeeded' | 'failed' | 'skipped';
    started_at: Generated<Date>;
    finished_at: Date | null;
    rows_in: number | null;
    rows_loaded: number | null;
    rows_rejected: number | null;
    detail: string | null;
    instance: string | null;
  };
  'repwatch.rejection': {
    id: Generated<number>;
    source: string;
    input_id: number | null;
    location: string;
    line_no: number | null;
    reason: string;
    raw: string | null;
    recorded_at: Generated<Date>;
  };
  'repwatch.stored_secret': { name: string; value: string; updated_at: Generated<Date> };
}
