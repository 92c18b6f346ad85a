import type { Migration } from './migration.js';

/** Mailboxes: every message kept with its stable key, and the feedback reports parsed from them. */
export const migration: Migration = {
  id: 3,
  name: 'jmrp',
  sql: String.raw`
-- Every message read from a mailbox, raw, keyed by Message-ID + sha256 of its bytes: the same report
-- delivered twice, or read again after a crash between commit and archive, is recognised here.
create table if not exists repwatch.mail_message (
  id              bigint generated always as identity primary key,
  stream          text not null check (stream in ('jmrp', 'bounces')),
  mailbox         text not null,
  message_key     text not null,
  message_id      text,
  sha256          text not null,
  byte_size       int not null,
  raw             bytea,
  stored_at       timestamptz not null default now(),
  classification  text not null,
  reason          text,
  quarantined     boolean not null default false,
  -- Where it was read (folder + UID, file path, mbox byte offset) and when the mailbox received it.
  location        text,
  delivered_at    timestamptz,
  unique (stream, message_key)
);
create index if not exists mail_message_mailbox_stored on repwatch.mail_message (mailbox, stored_at desc);
create index if not exists mail_message_quarantined on repwatch.mail_message (stream, stored_at desc) where quarantined;

-- One row per feedback report (ARF or legacy JMRP). Complaints are the reports whose type says so;
-- auth-failure, not-spam and opt-out reports are kept with their type but never counted.
create table if not exists repwatch.feedback_report (
  message_ref           bigint primary key references repwatch.mail_message (id),
  mailbox               text not null,
  report_format         text not null check (report_format in ('arf', 'jmrp_legacy')),
  feedback_type         text,
  is_complaint          boolean not null,
  user_agent            text,
  report_version        text,
  source_ip             inet,
  source_ip_origin      text,
  complained_at         timestamptz,
  complained_at_origin  text,
  day                   date,
  incidents             int not null default 1,
  reported_domain       text,
  original_mail_from    text,
  original_from_domain  text,
  original_message_id   text,
  campaign              text,
  recipient             text,
  subject               text,
  fields                jsonb not null default '{}'::jsonb
);
create index if not exists feedback_report_ip_day on repwatch.feedback_report (source_ip, day) where is_complaint;
create index if not exists feedback_report_day on repwatch.feedback_report (day);

create or replace view analytics.complaint as
  select complained_at, day, source_ip, source_ip_origin, feedback_type, user_agent, incidents,
         report_format, reported_domain, original_from_domain, original_message_id, campaign, mailbox
  from repwatch.feedback_report
  where is_complaint;
`,
};
