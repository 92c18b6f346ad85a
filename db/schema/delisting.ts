import type { Generated } from 'kysely';

/** Tables of migration 0005 (bounces, delisting cases, DNSBL results, authentication checks). */
export interface DelistingTables {
  'repwatch.bounce': {
    message_ref: number;
    seq: number;
    mailbox: string;
    format: 'dsn' | 'plain';
    bounced_at: Date | null;
    bounced_at_origin: string | null;
    day: string | null;
    ip: string | null;
    ip_origin: string | null;
    recipient_domain: string | null;
    sender_domain: string | null;
    action: string | null;
    smtp_code: number | null;
    enhanced_status: string | null;
    ms_codes: Generated<string[]>;
    evidence_kind: 'block' | 'warning' | null;
    route: string | null;
    reason: string | null;
    meaning: string | null;
    diagnostic: string | null;
  };
  'repwatch.delist_case': {
    id: Generated<number>;
    target: string;
    route: 'outlook_form' | 'office365_portal' | 'delist_email';
    opened_at: Date;
    state: string;
    state_changed_at: Date;
    closed_at: Date | null;
    relisted_at: Date | null;
  };
  'repwatch.delist_case_message': {
    id: Generated<number>;
    case_id: number;
    at: Date;
    state: string;
    direction: 'in' | 'out' | null;
    body: string | null;
    source_file: string | null;
    sha256: string | null;
  };
  'repwatch.dnsbl_result': {
    id: Generated<number>;
    checked_at: Date;
    day: string;
    ip: string;
    zone: string;
    outcome: 'listed' | 'not_listed' | 'refused' | 'error';
    listed: boolean;
    answer: Generated<string[]>;
    meaning: string | null;
    txt: string | null;
    error: string | null;
    new_listing: Generated<boolean>;
  };
  'repwatch.auth_check': {
    id: Generated<number>;
    checked_at: Date;
    day: string;
    domain: string;
    origin: string;
    spf_result: string;
    spf_record: string | null;
    spf_ips: unknown;
    dkim_result: string;
    dkim_selectors: unknown;
    dmarc_result: string;
    dmarc_policy: string | null;
    dmarc_record: string | null;
    dmarc_alignment: string | null;
    daily_volume: number | null;
    meets_requirement: boolean;
    flagged: boolean;
    problems: Generated<string[]>;
  };
}
