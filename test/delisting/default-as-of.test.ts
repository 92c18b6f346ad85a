import { expect, it } from 'vitest';
import { defaultAsOf } from '../../delisting/drafts.js';
import { defaultDecisionDate } from '../../transform/decisions.js';
import { describeEachBackend } from '../support/backends.js';

describeEachBackend('the default decision date (flags, delist draft, the demo)', (db) => {
  it('is the latest SNDS day, or the day of a newer IP Status download within the window (never after today)', async () => {
    const [data] = await db().query<{ id: number }>(
      `insert into repwatch.raw_download (source, kind, feed, location, sha256, byte_size, outcome) values ('file', 'ip_data', 'main', 'test', 'a', 0, 'loaded') returning id`,
    );
    await db().query(
      `insert into repwatch.snds_row (feed, day, ip, activity_start_raw, download_id, line_no, message_recipients, filter_result) values ('main', '2026-11-20', '203.0.113.5', 'raw', $1, 1, 100, 'GREEN')`,
      [data!.id],
    );
    expect(await defaultAsOf(db(), '2026-11-24', 7)).toBe('2026-11-20');
    // The block list is fetched today; the SNDS data lags: a request is about now.
    await db().query(
      `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome) values ('url', 'ip_status', 'main', 'x', '2026-11-22T06:00:00Z', 'b', 0, 'loaded')`,
    );
    expect(await defaultAsOf(db(), '2026-11-24', 7)).toBe('2026-11-22');
    // A download dated after "today" (a clock set back) does not move the date past today.
    expect(await defaultAsOf(db(), '2026-11-21', 7)).toBe('2026-11-20');
    // A block list fetched a week or more after the last SNDS day: its window holds no SNDS data at
    // all, so the SNDS day stays the decision date (flags notes the newer list).
    await db().query(
      `insert into repwatch.raw_download (source, kind, feed, location, fetched_at, sha256, byte_size, outcome) values ('url', 'ip_status', 'main', 'x', '2026-11-27T06:00:00Z', 'c', 0, 'loaded')`,
    );
    expect(await defaultAsOf(db(), '2026-11-28', 7)).toBe('2026-11-20');
    expect(await defaultDecisionDate(db(), '2026-11-28', 8)).toBe('2026-11-27');
  });
});
