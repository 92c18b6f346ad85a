import type { Generated } from 'kysely';

/** Tables of migration 0004 and the fixed `analytics` views BI tools read. */
export interface AnalyticsTables {
  'repwatch.ip_day_fact': {
    ip: string;
    day: string;
    rcpt_commands: number | null;
    data_commands: number | null;
    message_recipients: number | null;
    filter_result: string | null;
    snds_complaint_band: string | null;
    trap_hits: number | null;
    complaints: Generated<number>;
    has_snds: Generated<boolean>;
  };
  'repwatch.ip_flag': IpFlagRow & {
    red_days_7d: number;
    yellow_days_7d: number;
    routes: string[];
    computed_at: Generated<Date>;
  };
  'analytics.ip_day': {
    ip: string;
    day: string;
    rcpt_commands: number | null;
    data_commands: number | null;
    message_recipients: number | null;
    filter_result: string | null;
    snds_complaint_band: string | null;
    trap_hits: number | null;
    complaints: number;
    complaint_rate: number | null;
    blocked: boolean;
  };
  'analytics.complaint': {
    complained_at: Date | null;
    day: string | null;
    source_ip: string | null;
    source_ip_origin: string | null;
    feedback_type: string | null;
    user_agent: string | null;
    incidents: number;
    report_format: string;
    reported_domain: string | null;
    original_from_domain: string | null;
    original_message_id: string | null;
    campaign: string | null;
    mailbox: string;
  };
  'analytics.ip_status': { first_ip: string; last_ip: string; blocked: boolean; details: string | null; fetched_at: Date };
  'analytics.ip_flag': IpFlagRow;
  'analytics.pipeline_run': {
    job: string;
    period: string;
    status: string;
    started_at: Date;
    finished_at: Date | null;
    rows_in: number | null;
    rows_loaded: number | null;
    rows_rejected: number | null;
    detail: string | null;
  };
}

export interface IpFlagRow {
  as_of: string;
  ip: string;
  status: 'start_delisting' | 'fix_first' | 'at_risk' | 'ok' | 'no_data';
  reasons: string[];
  recipients_7d: number;
  complaints_7d: number;
  complaint_rate_7d: number | null;
  trap_hits_7d: number;
  blocked: boolean;
  route: string | null;
}
