import type { Generated } from 'kysely';

/** Tables of migration 0003. */
export interface JmrpTables {
  'repwatch.mail_message': {
    id: Generated<number>;
    stream: 'jmrp' | 'bounces';
    mailbox: string;
    message_key: string;
    message_id: string | null;
    sha256: string;
    byte_size: number;
    raw: Buffer | null;
    stored_at: Generated<Date>;
    classification: string;
    reason: string | null;
    quarantined: Generated<boolean>;
    location: string | null;
    delivered_at: Date | null;
  };
  'repwatch.feedback_report': {
    message_ref: number;
    mailbox: string;
    report_format: 'arf' | 'jmrp_legacy';
    feedback_type: string | null;
    is_complaint: boolean;
    user_agent: string | null;
    report_version: string | null;
    source_ip: string | null;
    source_ip_origin: string | null;
    complained_at: Date | null;
    complained_at_origin: string | null;
    day: string | null;
    incidents: Generated<number>;
    reported_domain: string | null;
    original_mail_from: string | null;
    original_from_domain: string | null;
    original_message_id: string | null;
    campaign: string | null;
    recipient: string | null;
    subject: string | null;
    fields: Generated<unknown>;
  };
}
