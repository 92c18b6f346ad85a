import type { Generated } from 'kysely';

/** Tables of migration 0002. */
export interface SndsTables {
  'repwatch.raw_download': {
    id: Generated<number>;
    source: 'file' | 'stdin' | 'url' | 'api';
    kind: 'ip_data' | 'ip_status';
    feed: string;
    location: string;
    requested_day: string | null;
    http_status: number | null;
    content_type: string | null;
    timezone: Generated<string>;
    fetched_at: Generated<Date>;
    sha256: string;
    byte_size: number;
    outcome: Generated<'received' | 'loaded' | 'empty' | 'duplicate' | 'failed' | 'link_broken'>;
    duplicate_of: number | null;
    rows_loaded: number | null;
    days_loaded: number | null;
    rows_replaced: number | null;
    rows_rejected: number | null;
    /** Rows of this download later downloads replaced (migration 0019; null: loaded before it). */
    rows_lost: Generated<number | null>;
    detail: string | null;
  };
  'repwatch.raw_download_chunk': { download_id: number; seq: number; data: Buffer };
  'repwatch.snds_row': {
    feed: string;
    day: string;
    ip: string;
    activity_start_raw: string;
    activity_end_raw: string | null;
    rcpt_commands: number | null;
    data_commands: number | null;
    message_recipients: number | null;
    filter_result: string | null;
    complaint_band: string | null;
    complaint_rate_low: number | null;
    complaint_rate_high: number | null;
    trap_start_raw: string | null;
    trap_end_raw: string | null;
    trap_hits: number | null;
    sample_helo: string | null;
    jmr_p1_sender: string | null;
    comments: string | null;
    extra_columns: string[] | null;
    download_id: number;
    line_no: number;
  };
  'repwatch.snds_feed_day': { feed: string; day: string; download_id: number; row_count: number; loaded_at: Generated<Date> };
  'repwatch.snds_status_range': {
    download_id: number;
    feed: string;
    line_no: number;
    first_ip: string;
    last_ip: string;
    blocked: boolean;
    details: string | null;
  };
}
