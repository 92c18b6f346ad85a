import { describe, expect, it } from 'vitest';
import { CronSchedule } from '../../jobs/cron.js';
import { dayOfTick, minuteOfTick, reportWeekOfTick } from '../../jobs/periods.js';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('CronSchedule (node-cron matching, minute walking)', () => {
  it('lists every tick of a daily schedule in a window, oldest first, window start excluded and end included', () => {
    const daily = new CronSchedule('15 6 * * *');
    expect(iso(daily.ticksBetween(new Date('2026-11-25T06:15:00Z'), new Date('2026-11-28T06:15:00Z')))).toEqual([
      '2026-11-26T06:15:00.000Z',
      '2026-11-27T06:15:00.000Z',
      '2026-11-28T06:15:00.000Z',
    ]);
  });

  it('gives the same answer when a sliding window reuses earlier work', () => {
    const every10 = new CronSchedule('*/10 * * * *');
    const first = every10.ticksBetween(new Date('2026-11-28T05:00:00Z'), new Date('2026-11-28T06:05:00Z'));
    const slid = every10.ticksBetween(new Date('2026-11-28T05:20:00Z'), new Date('2026-11-28T06:31:00Z'));
    const fresh = new CronSchedule('*/10 * * * *').ticksBetween(new Date('2026-11-28T05:20:00Z'), new Date('2026-11-28T06:31:00Z'));
    expect(first).toHaveLength(6);
    expect(iso(slid)).toEqual(iso(fresh));
    expect(iso(slid)[0]).toBe('2026-11-28T05:30:00.000Z');
    expect(iso(slid).at(-1)).toBe('2026-11-28T06:30:00.000Z');
  });

  it('finds the previous and next tick', () => {
    const weekly = new CronSchedule('0 7 * * 1');
    expect(weekly.previousTick(new Date('2026-11-28T05:00:00Z'), 8 * 86_400_000)?.toISOString()).toBe('2026-11-23T07:00:00.000Z');
    expect(weekly.previousTick(new Date('2026-11-23T07:00:00Z'), 86_400_000)?.toISOString()).toBe('2026-11-23T07:00:00.000Z');
    expect(weekly.previousTick(new Date('2026-11-28T05:00:00Z'), 86_400_000)).toBeNull();
    expect(weekly.nextTick(new Date('2026-11-28T05:00:00Z'))?.toISOString()).toBe('2026-11-30T07:00:00.000Z');
    // Months and years ahead: a leap day, and the 31st from the start of a month without one.
    expect(new CronSchedule('0 0 29 2 *').nextTick(new Date('2027-03-01T00:00:00Z'))?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(new CronSchedule('0 6 31 * *').nextTick(new Date('2026-04-01T00:00:00Z'))?.toISOString()).toBe('2026-05-31T06:00:00.000Z');
    // The answer is kept until its tick passes, and recomputed after (status asks at every scrape).
    const yearly = new CronSchedule('0 6 1 1 *');
    expect(yearly.nextTick(new Date('2026-11-28T05:00:00Z'))?.toISOString()).toBe('2027-01-01T06:00:00.000Z');
    expect(yearly.nextTick(new Date('2026-12-31T23:00:00Z'))?.toISOString()).toBe('2027-01-01T06:00:00.000Z');
    expect(yearly.nextTick(new Date('2027-01-01T06:00:00Z'))?.toISOString()).toBe('2028-01-01T06:00:00.000Z');
    expect(yearly.nextTick(new Date('2026-12-01T00:00:00Z'))?.toISOString()).toBe('2027-01-01T06:00:00.000Z');
  });

  it('reads the expression in its time zone, across a daylight-saving change', () => {
    // 06:15 in Berlin is 04:15 UTC under CEST (UTC+2) and 05:15 UTC after the change to CET on 25 October.
    const berlin = new CronSchedule('15 6 * * *', 'Europe/Berlin');
    expect(iso(berlin.ticksBetween(new Date('2026-10-23T00:00:00Z'), new Date('2026-10-27T00:00:00Z')))).toEqual([
      '2026-10-23T04:15:00.000Z',
      '2026-10-24T04:15:00.000Z',
      '2026-10-25T05:15:00.000Z',
      '2026-10-26T05:15:00.000Z',
    ]);
    // India is UTC+5:30: a local minute 15 falls on UTC minute 45.
    const kolkata = new CronSchedule('15 6 * * *', 'Asia/Kolkata');
    expect(kolkata.previousTick(new Date('2026-11-28T06:00:00Z'), 86_400_000)?.toISOString()).toBe('2026-11-28T00:45:00.000Z');
  });

  it('refuses invalid expressions and second-level schedules', () => {
    expect(() => new CronSchedule('61 * * * *')).toThrow(/not a valid cron expression/);
    expect(() => new CronSchedule('*/5 * * * * *')).not.toThrow();
    expect(() => new CronSchedule('30 * * * * *')).toThrow(/minute resolution/);
    // Both day fields restricted: classic cron runs on either, node-cron only on both (so "the 1st and
    // Mondays" would run only on a Monday the 1st). Refused rather than run on other days than meant.
    expect(() => new CronSchedule('0 6 1 * 1')).toThrow(/restricts both the day of the month and the day of the week/);
    expect(() => new CronSchedule('0 6 1 * *')).not.toThrow();
    expect(() => new CronSchedule('0 6 * * 1-5')).not.toThrow();
  });
});

describe('periods', () => {
  it('SNDS: the tick’s calendar day in the schedule’s zone', () => {
    expect(dayOfTick(new Date('2026-11-28T06:15:00Z'), 'UTC')).toBe('2026-11-28');
    expect(dayOfTick(new Date('2026-11-28T02:00:00Z'), 'America/Los_Angeles')).toBe('2026-11-27');
  });
  it('mailboxes: the tick to the minute, in UTC', () => {
    expect(minuteOfTick(new Date('2026-11-28T06:10:00Z'))).toBe('2026-11-28T06:10Z');
  });
  it('report: the last complete ISO week before the tick', () => {
    expect(reportWeekOfTick(new Date('2026-11-23T07:00:00Z'), 'UTC')).toBe('2026-W47');
    expect(reportWeekOfTick(new Date('2026-11-28T07:00:00Z'), 'UTC')).toBe('2026-W47');
    expect(reportWeekOfTick(new Date('2026-11-30T07:00:00Z'), 'UTC')).toBe('2026-W48');
    expect(reportWeekOfTick(new Date('2027-01-04T07:00:00Z'), 'UTC')).toBe('2026-W53');
  });
});

describe('schedule configuration', () => {
  it('rejects an invalid cron expression at load time, naming the key', async () => {
    const { configSchema } = await import('../../config/schema.js');
    const result = configSchema.safeParse({ schedule: { snds: '99 * * * *', jmrp: '*/5 * * * *' } });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['schedule.snds', 'must be a cron expression such as "15 6 * * *"']]);
    expect(configSchema.parse({}).schedule).toMatchObject({ retryBaseSeconds: 60, retryMaxSeconds: 3600, staleAfterMinutes: 60 });
  });

  it('refuses at load, naming the key, what the scheduler would refuse when it builds the jobs', async () => {
    const { configSchema } = await import('../../config/schema.js');
    const issues = (schedule: Record<string, string>) => {
      const result = configSchema.safeParse({ schedule });
      return result.success ? [] : result.error.issues.map((i) => [i.path.join('.'), i.message]);
    };
    expect(issues({ report: '0 7 1 * 1' })).toEqual([
      ['schedule.report', '"0 7 1 * 1": it restricts both the day of the month and the day of the week; cron would run on either, this scheduler only on days that match both. Restrict one of them'],
    ]);
    expect(issues({ jmrp: '30 */10 * * * *' })).toEqual([['schedule.jmrp', '"30 */10 * * * *": schedules have minute resolution; a seconds field must include 0']]);
    // What the schema accepts, the scheduler builds.
    for (const accepted of ['0 7 1 * *', '0 7 * * 1-5', '0 */10 * * * *', '*/5 * * * * *']) {
      expect(issues({ snds: accepted }), accepted).toEqual([]);
      expect(() => new CronSchedule(accepted)).not.toThrow();
    }
  });
});
