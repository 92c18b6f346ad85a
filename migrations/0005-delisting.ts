import type { Migration } from './migration.js';

/**
 * Delisting: bounces parsed from our MTAs' NDRs, delisting cases with every message exchanged,
 * DNS blocklist results with history, and bulk-sender authentication checks. Block evidence itself
 * lives in repwatch.block_evidence (migration 0004), which the decisions read.
 */
export const migration: Migration = {
  id: 5,
  name: 'delisting',
  sql: String.raw`
-- One row per failed recipient of a bounce (a DSN may report several recipients, each with its own
-- code). The raw message is in repwatch.mail_message (stream 'bounces'); recipients are stored only as
-- their domain (the local part is personal data and not needed for delisting).
create table if not exists repwatch.bounce (
  message_ref        bigint not null references repwatch.mail_message (id),
  seq                int not null,
  mailbox            text not null,
  format             text not null check (format in ('dsn', 'plain')),
  bounced_at         timestamptz,
  bounced_at_origin  text,
  day                date,
  ip                 inet,
  ip_origin          text,
  recipient_domain   text,
  sender_domain      text,
  action             text,
  smtp_code          int,
  enhanced_status    text,
  ms_codes           text[] not null default '{}',
  evidence_kind      text check (evidence_kind in ('block', 'warning')),
  route              text,
  reason             text,
  meaning            text,
  diagnostic         text,
  primary key (message_ref, seq)
);
create index if not exists bounce_ip_day on repwatch.bounce (ip, day);
create index if not exists bounce_day on repwatch.bounce (day);

-- A delisting request and its history. target is one IP (/32, /128) or a range.
create table if not exists repwatch.delist_case (
  id                bigint generated always as identity primary key,
  target            cidr not null,
  route             text not null check (route in ('outlook_form', 'office365_portal', 'delist_email')),
  opened_at         timestamptz not null,
  state             text not null check (state in ('requested', 'mitigated', 'conditionally_mitigated', 'refused',
                                                   'escalated', 'delisted', 'relisted')),
  state_changed_at  timestamptz not null,
  -- Set when the block is lifted (mitigated or delisted); a block seen after this day is a relisting.
  closed_at         timestamptz,
  relisted_at       timestamptz
);

-- Every message and state change of a case, in order; nothing is ever replaced.
create table if not exists repwatch.delist_case_message (
  id           bigint generated always as identity primary key,
  case_id      bigint not null references repwatch.delist_case (id),
  at           timestamptz not null,
  state        text not null,
  direction    text check (direction in ('in', 'out')),
  body         text,
  source_file  text,
  sha256       text
);
create index if not exists delist_case_message_case on repwatch.delist_case_message (case_id, at);

-- Every DNSBL query's outcome, kept as history. "refused" (Spamhaus 127.255.255.x, or a resolver
-- that refuses) and "error" are never listings.
create table if not exists repwatch.dnsbl_result (
  id            bigint generated always as identity primary key,
  checked_at    timestamptz not null,
  day           date not null,
  ip            inet not null,
  zone          text not null,
  outcome       text not null check (outcome in ('listed', 'not_listed', 'refused', 'error')),
  listed        boolean not null,
  answer        text[] not null default '{}',
  meaning       text,
  txt           text,
  error         text,
  new_listing   boolean not null default false
);
create index if not exists dnsbl_result_ip_zone on repwatch.dnsbl_result (ip, zone, checked_at desc);
create index if not exists dnsbl_result_day on repwatch.dnsbl_result (day);

-- Bulk-sender authentication per sending domain and check.
create table if not exists repwatch.auth_check (
  id                 bigint generated always as identity primary key,
  checked_at         timestamptz not null,
  day                date not null,
  domain             text not null,
  origin             text not null,
  spf_result         text not null,
  spf_record         text,
  spf_ips            jsonb not null default '{}'::jsonb,
  dkim_result        text not null,
  dkim_selectors     jsonb not null default '{}'::jsonb,
  dmarc_result       text not null,
  dmarc_policy       text,
  dmarc_record       text,
  dmarc_alignment    text,
  daily_volume       bigint,
  meets_requirement  boolean not null,
  flagged            boolean not null,
  problems           text[] not null default '{}'
);
create index if not exists auth_check_domain on repwatch.auth_check (domain, checked_at desc);

create or replace view analytics.bounce as
  select b.bounced_at, b.day, b.ip, b.ip_origin, b.recipient_domain, b.sender_domain, b.smtp_code,
         b.enhanced_status, b.ms_codes, b.evidence_kind, b.route, b.reason, b.meaning, b.mailbox
  from repwatch.bounce b;

create or replace view analytics.delist_case as
  select c.id, c.target, c.route, c.opened_at, c.state, c.state_changed_at, c.closed_at, c.relisted_at,
         (select count(*) from repwatch.delist_case_message m where m.case_id = c.id) as messages
  from repwatch.delist_case c;

-- The latest answer per IP and zone, and whether it is a listing first seen in that check.
create or replace view analytics.dnsbl_latest as
  select distinct on (ip, zone) ip, zone, checked_at, day, outcome, listed, answer, meaning, txt, new_listing
  from repwatch.dnsbl_result
  order by ip, zone, checked_at desc, id desc;

create or replace view analytics.auth_latest as
  select distinct on (domain) domain, checked_at, day, origin, spf_result, dkim_result, dmarc_result, dmarc_policy,
         dmarc_alignment, daily_volume, meets_requirement, flagged, problems
  from repwatch.auth_check
  order by domain, checked_at desc, id desc;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'repwatch_bi') then
    grant select on all tables in schema analytics to repwatch_bi;
  end if;
exception when insufficient_privilege then
  raise notice 'repwatch: cannot grant to repwatch_bi';
end
$$;
`,
};
