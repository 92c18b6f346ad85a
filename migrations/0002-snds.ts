import type { Migration } from './migration.js';

/** SNDS: every download kept as received, the rows of IP Data exports, the ranges of IP Status exports. */
export const migration: Migration = {
  id: 2,
  name: 'snds',
  sql: String.raw`
-- Every download or file exactly as received, before parsing; the location has its key redacted.
-- The bytes live in raw_download_chunk in 1 MiB slices, so neither side holds a whole export in memory.
-- Stored uncompressed (storage external): compressing 100 MB of CSV cost a core-second per backfill,
-- in JS (gzip) or in the server (pglz), on a load that competes for the same two cores.
-- outcome: received (stored, not yet parsed), loaded, empty (no data), duplicate (same bytes as
-- duplicate_of, not parsed again), failed (not an SNDS export, or over half its rows bad),
-- link_broken (an HTML sign-in page, 401/403, a redirect to a login host: a person must act).
create table if not exists repwatch.raw_download (
  id             bigint generated always as identity primary key,
  source         text not null check (source in ('file', 'stdin', 'url', 'api')),
  kind           text not null check (kind in ('ip_data', 'ip_status')),
  feed           text not null,
  location       text not null,
  requested_day  date,
  http_status    int,
  content_type   text,
  timezone       text not null default 'UTC',
  fetched_at     timestamptz not null default now(),
  sha256         text not null,
  byte_size      bigint not null,
  outcome        text not null default 'received'
                 check (outcome in ('received', 'loaded', 'empty', 'duplicate', 'failed', 'link_broken')),
  duplicate_of   bigint references repwatch.raw_download (id),
  rows_loaded    int,
  days_loaded    int,
  rows_replaced  int,
  rows_rejected  int,
  detail         text
);
create index if not exists raw_download_identity on repwatch.raw_download (kind, feed, sha256);
create index if not exists raw_download_feed_fetched on repwatch.raw_download (feed, kind, fetched_at desc);

create table if not exists repwatch.raw_download_chunk (
  download_id  bigint not null references repwatch.raw_download (id) on delete cascade,
  seq          int not null,
  data         bytea not null,
  primary key (download_id, seq)
);
alter table repwatch.raw_download_chunk alter column data set storage external;

-- One row per line of an IP Data export, as COPY writes it. A re-fetched day replaces that feed's
-- rows for the day (snds_feed_day says which download holds each day).
-- Timestamps are stored as SNDS wrote them (M/D/YYYY h:mm AM, in the feed's zone, recorded per download
-- in raw_download.timezone) plus the row's day; repwatch.snds_row_timed gives them as timestamptz.
-- Measured: converting four timestamptz per row during COPY made a million-row load twice as slow,
-- and nothing per row needs the instants (the day is what facts are keyed on).
-- One index only, and a BRIN one: a btree on day doubled the time of a million-row COPY (measured:
-- 10.5 s against 4.1 s with BRIN, 3.4 s with none), while BRIN costs next to nothing to maintain. Rows
-- arrive a download at a time, so a day's rows sit together on disk and a day's read (the transform's
-- per-day recompute, replacing a feed's day) touches a few block ranges: 4-9 ms for one or two days
-- of 10,000 IPs out of a million rows. One IP's history is read from repwatch.ip_day_fact (primary key
-- (ip, day)), not from here; which days a feed holds is repwatch.snds_feed_day.
create table if not exists repwatch.snds_row (
  feed                 text not null,
  day                  date not null,
  ip                   inet not null,
  activity_start_raw   text not null,
  activity_end_raw     text,
  rcpt_commands        bigint,
  data_commands        bigint,
  message_recipients   bigint,
  filter_result        text check (filter_result in ('GREEN', 'YELLOW', 'RED')),
  complaint_band       text,
  complaint_rate_low   numeric,
  complaint_rate_high  numeric,
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
create index if not exists snds_row_day on repwatch.snds_row using brin (day);

-- An SNDS timestamp as an instant: the wall-clock fields read with a pattern (never DateStyle or the
-- session's zone), placed in the zone the download was parsed with. Same rules as parse-timestamp.ts.
create or replace function repwatch.snds_time(raw text, zone text) returns timestamptz
  language sql immutable parallel safe as $$
  select make_timestamp(m[3]::int, m[1]::int, m[2]::int,
           case when m[7] is null then m[4]::int
                else m[4]::int % 12 + case when upper(m[7]) = 'PM' then 12 else 0 end end,
           m[5]::int, coalesce(m[6], '0')::double precision) at time zone zone
  from regexp_match(raw, '^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$') as m
$$;

create or replace view repwatch.snds_row_timed as
  select r.*, d.timezone,
         repwatch.snds_time(r.activity_start_raw, d.timezone) as activity_start,
         repwatch.snds_time(r.activity_end_raw, d.timezone) as activity_end,
         repwatch.snds_time(r.trap_start_raw, d.timezone) as trap_start,
         repwatch.snds_time(r.trap_end_raw, d.timezone) as trap_end
  from repwatch.snds_row r
  join repwatch.raw_download d on d.id = r.download_id;

-- Which download holds each (feed, day) of IP Data, and how many rows: what makes a re-fetch a
-- replacement rather than an addition, and what "days loaded" in summaries and status counts.
create table if not exists repwatch.snds_feed_day (
  feed         text not null,
  day          date not null,
  download_id  bigint not null references repwatch.raw_download (id),
  row_count    int not null,
  loaded_at    timestamptz not null default now(),
  primary key (feed, day)
);

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
-- A duplicate download (same bytes as an earlier one) points at the ranges of the one it repeats, with
-- its own, newer fetch time.
create or replace view repwatch.current_status_download as
  select distinct on (feed) coalesce(duplicate_of, id) as id, feed, fetched_at
  from repwatch.raw_download
  where kind = 'ip_status' and outcome in ('loaded', 'empty', 'duplicate')
  order by feed, fetched_at desc, id desc;

create or replace view analytics.ip_status as
  select r.first_ip, r.last_ip, r.blocked, r.details, d.fetched_at
  from repwatch.snds_status_range r
  join repwatch.current_status_download d on d.id = r.download_id;
`,
};
