import { describe, expect, it } from 'vitest';
import { isoWeekOf, lastCompleteWeekEnd, periodEnding, reportBaseName, sundayOfIsoWeek } from '../../reports/week.js';

describe('ISO weeks of the report', () => {
  it('names the ISO week of a date, across year ends', () => {
    expect(isoWeekOf('2026-11-22')).toBe('2026-W47');
    expect(isoWeekOf('2026-11-16')).toBe('2026-W47');
    expect(isoWeekOf('2027-01-01')).toBe('2026-W53'); // a Friday: week 53 of 2026
    expect(isoWeekOf('2024-12-30')).toBe('2025-W01'); // a Monday: week 1 of 2025
    expect(isoWeekOf('2021-01-03')).toBe('2020-W53');
  });

  it('finds the Sunday ending a week, and refuses weeks that do not exist', () => {
    expect(sundayOfIsoWeek('2026-W47')).toBe('2026-11-22');
    expect(sundayOfIsoWeek('2025-W01')).toBe('2025-01-05');
    expect(sundayOfIsoWeek('2020-W53')).toBe('2021-01-03');
    expect(sundayOfIsoWeek('2021-W53')).toBeNull();
    expect(sundayOfIsoWeek('2026-W00')).toBeNull();
    expect(sundayOfIsoWeek('2026-47')).toBeNull();
  });

  it('takes the last complete week before today', () => {
    expect(lastCompleteWeekEnd(new Date('2026-11-23T00:00:01Z'))).toBe('2026-11-22'); // Monday
    expect(lastCompleteWeekEnd(new Date('2026-11-22T23:59:59Z'))).toBe('2026-11-15'); // Sunday: not complete yet
    expect(lastCompleteWeekEnd(new Date('2026-11-28T12:00:00Z'))).toBe('2026-11-22'); // Saturday
  });

  it('covers the seven days ending with the as-of date and the seven before', () => {
    expect(periodEnding('2026-11-22')).toEqual({ week: '2026-W47', from: '2026-11-16', to: '2026-11-22', previousFrom: '2026-11-09', previousTo: '2026-11-15', isoWeek: true });
    const partial = periodEnding('2026-11-20');
    expect(partial).toEqual({ week: null, from: '2026-11-14', to: '2026-11-20', previousFrom: '2026-11-07', previousTo: '2026-11-13', isoWeek: false });
    expect(reportBaseName(partial)).toBe('repwatch-weekly-2026-11-20');
    expect(reportBaseName(periodEnding('2026-11-22'))).toBe('repwatch-weekly-2026-W47');
  });
});
