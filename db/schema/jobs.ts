/** Tables of migration 0006 (the ledger itself, repwatch.pipeline_run, is in core.ts). */
export interface JobsTables {
  'repwatch.scheduler_instance': {
    instance: string;
    started_at: Date;
    heartbeat_at: Date;
    version: string | null;
    http_port: number | null;
    jobs: string[];
  };
}
