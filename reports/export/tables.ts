/**
 * The analytics views an export can read, column by column, with one portable type per column: the
 * Arrow, Parquet and CSV writers map these types, so all three formats agree on what a column is.
 */

export type ColumnType = 'text' | 'date' | 'timestamp' | 'int32' | 'int64' | 'float64' | 'bool' | 'text[]';

export interface ExportColumn {
  name: string;
  type: ColumnType;
  /** The SQL that selects it (inet as text without a /32 suffix, numeric as float8). */
  select: string;
  nullable: boolean;
}

export interface ExportTable {
  view: string;
  /** The date column --from/--to filter on. */
  dateColumn: string;
  /** On the view's own columns (`v.`): a bare name would sort the selected text (host(ip)), so
   * 192.0.2.10 would come before 192.0.2.2. */
  orderBy: string;
  columns: ExportColumn[];
}

const col = (name: string, type: ColumnType, nullable = true, select = name): ExportColumn => ({ name, type, select, nullable });
const inet = (name: string, nullable = true) => col(name, 'text', nullable, `host(${name})`);

export const EXPORT_TABLES = {
  ip_day: {
    view: 'analytics.ip_day',
    dateColumn: 'day',
    orderBy: 'v.day, v.ip',
    columns: [
      inet('ip', false),
      col('day', 'date', false),
      col('rcpt_commands', 'int64'),
      col('data_commands', 'int64'),
      col('message_recipients', 'int64'),
      col('filter_result', 'text'),
      col('snds_complaint_band', 'text'),
      col('trap_hits', 'int32'),
      col('complaints', 'int32', false),
      col('complaint_rate', 'float64', true, 'complaint_rate::float8'),
      col('blocked', 'bool', false),
    ],
  },
  complaint: {
    view: 'analytics.complaint',
    dateColumn: 'day',
    orderBy: 'v.day nulls first, v.complained_at nulls first, v.source_ip, v.original_message_id',
    columns: [
      col('complained_at', 'timestamp'),
      col('day', 'date'),
      inet('source_ip'),
      col('source_ip_origin', 'text'),
      col('feedback_type', 'text'),
      col('user_agent', 'text'),
      col('incidents', 'int32', false),
      col('report_format', 'text', false),
      col('reported_domain', 'text'),
      col('original_from_domain', 'text'),
      col('original_message_id', 'text'),
      col('campaign', 'text'),
      col('mailbox', 'text', false),
    ],
  },
  ip_flag: {
    view: 'analytics.ip_flag',
    dateColumn: 'as_of',
    orderBy: 'v.as_of, v.ip',
    columns: [
      col('as_of', 'date', false),
      inet('ip', false),
      col('status', 'text', false),
      col('reasons', 'text[]', false),
      col('recipients_7d', 'int64', false),
      col('complaints_7d', 'int32', false),
      col('complaint_rate_7d', 'float64', true, 'complaint_rate_7d::float8'),
      col('trap_hits_7d', 'int32', false),
      col('blocked', 'bool', false),
      col('route', 'text'),
    ],
  },
} as const satisfies Record<string, ExportTable>;

export type ExportTableName = keyof typeof EXPORT_TABLES;
export const EXPORT_TABLE_NAMES = Object.keys(EXPORT_TABLES) as ExportTableName[];
