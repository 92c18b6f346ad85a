import type { Migration } from './migration.js';

/** SNDS: every download kept as received, the rows of IP Data exports, the ranges of IP Status exports. */
export const migration: Migration = {
  id: 2,
  name: 'snds',
  sql: String.raw`
-- Every download or file exactly as received, before parsing; the location has its key redacted.
create table if not exists repwatch.raw_download (
  id             bigint generated always as identity primary key,
  source         text not null,
  kind           text not null check (kind in ('ip_data', 'ip_status')),
  feed           text not null,
  location       text not null,
  requested_day  date,
  http_status    int,
  content_type   text,
  fetched_at     timestamptz not null default now(),
  sha256         text not null,
  byte_size      bigint not null,
  content        bytea,
  outcome        text not null default 'received',
  rows_loaded    int,
  rows_rejected  int,
  detail         text
);
create index if not exists raw_download_identity on repwatch.raw_download (kind, feed, sha256);
create index if not exists raw_download_feed_fetched on repwatch.raw_download (feed, kind, fetched_at desc);

-- Large files are kept in slices so that neither side holds a whole export in memory.
create table if not exists repwatch.raw_download_chunk (
  download_id  bigint not null references repwatch.raw_download (id),
  seq          int not null,
  data         bytea not null,
  primary key (download_id, seq)
);

-- One row per line of an IP Data export. A re-fetched day replaces that feed's rows for the day.
create table if not exists repwatch.snds_row (
  feed                 text not null,
  day                  date not null,
  ip                   inet not null,
  activity_start       timestamptz not null,
  activity_end         timestamptz,
  activity_start_raw   text not null,
  activity_end_raw     text,
  rcpt_commands        bigint,
  data_commands        bigint,
  message_recipients   bigint,
  filter_result        text,
  complaint_band       text,
  complaint_rate_low   numeric,
  complaint_rate_high  numeric,
  trap_start           timestamptz,
  trap_end             timestamptz,
  trap_start_raw       text,
  trap_end_raw         text,
  trap_hits            int,
  sample_helo          text,
  jmr_p1_sender        text,
  comments             text,
  extra_columns        text[],
  download_id          bigint not null,
  line_no              int not null
);
create index if not exists snds_row_feed_day on repwatch.snds_row (feed, day);
create index if not exists snds_row_ip_day on repwatch.snds_row (ip, day);

-- One row per line of an IP Status export; older downloads stay as history.
create table if not exists repwatch.snds_status_range (
  download_id  bigint not null references repwatch.raw_download (id),
  feed         text not null,
  line_no      int not null,
  first_ip     inet not null,
  last_ip      inet not null,
  blocked      boolean not null,
  details      text
);
create index if not exists snds_status_range_download on repwatch.snds_status_range (download_id);

-- The current block list: the ranges of each feed's latest IP Status download that loaded
-- (an empty download means nothing of that feed is blocked).
create or replace view repwatch.current_status_download as
  select distinct on (feed) id, feed, fetched_at
  from repwatch.raw_download
  where kind = 'ip_status' and outcome in ('loaded', 'empty')
  order by feed, fetched_at desc, id desc;

create or replace view analytics.ip_status as
  select r.first_ip, r.last_ip, r.blocked, r.details, d.fetched_at
  from repwatch.snds_status_range r
  join repwatch.current_status_download d on d.id = r.download_id;
`,
};
