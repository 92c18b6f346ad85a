import type { Generated } from 'kysely';

/** Tables of migration 0004 (facts, pools, block evidence, decisions) and the `analytics` views BI tools read. */
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
    has_red: Generated<boolean>;
    has_yellow: Generated<boolean>;
    snds_feed: string | null;
  };
  'repwatch.ip_pool': { pool: string; cidr: string };
  /** Filled by the bounce, blocklist and delisting stages; read by the decisions (issue 8). */
  'repwatch.block_evidence': {
    ip: string;
    day: string;
    kind: 'block' | 'warning';
    /** outlook_form, office365_portal or delist_email (kind = 'block'). */
    route: string | null;
    /** reputation_deferral, auth_requirements, dnsbl_listed, relisted... (kind = 'warning'). */
    reason: string | null;
    source: string;
    detail: string | null;
    ref_id: number | null;
  };
  'repwatch.ip_flag': IpFlagRow & {
    red_days_7d: number;
    yellow_days_7d: number;
    routes: string[];
    window_days: Generated<number>;
    /** The thresholds the decision was made with (null: stored before migration 0010). */
    complaint_rate_warn: number | null;
    complaint_rate_max: number | null;
    /** The rules version it was made with (transform/decisions.ts DECISION_RULES_VERSION; null: before migration 0014). */
    rules_version: number | null;
    computed_at: Generated<Date>;
  };
  'analytics.ip_trend': IpTrendRow;
  'analytics.pool_day': {
    pool: string;
    day: string;
    ips: number;
    rcpt_commands: number | null;
    data_commands: number | null;
    message_recipients: number;
    complaints: number;
    complaint_rate: number | null;
    trap_hits: number;
    red_ips: number;
    yellow_ips: number;
    blocked_ips: number;
  };
  'analytics.pool_flag': {
    pool: string;
    as_of: string;
    ips: number;
    start_delisting: number;
    fix_first: number;
    at_risk: number;
    ok: number;
    no_data: number;
    recipients_7d: number;
    complaints_7d: number;
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

/** analytics.ip_trend: rolling sums per IP and day (rates null when there were no recipients). */
export interface IpTrendRow {
  ip: string;
  day: string;
  message_recipients: number | null;
  complaints: number;
  trap_hits: number | null;
  filter_result: string | null;
  recipients_7d: number;
  complaints_7d: number;
  trap_hits_7d: number;
  complaint_rate_7d: number | null;
  red_days_7d: number;
  yellow_days_7d: number;
  recipients_28d: number;
  complaints_28d: number;
  trap_hits_28d: number;
  complaint_rate_28d: number | null;
  red_days_28d: number;
  yellow_days_28d: number;
  recipients_prev_7d: number;
  complaint_rate_prev_7d: number | null;
  /** recipients_7d / recipients_prev_7d - 1 (0.25 = +25 %). */
  volume_change_wow: number | null;
  /** complaint_rate_7d - complaint_rate_prev_7d, in absolute rate (0.001 = +0.1 point). */
  complaint_rate_change_wow: number | null;
}
