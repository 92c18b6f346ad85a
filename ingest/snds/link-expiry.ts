import { addDays, daysBetween } from '../../lib/clock.js';

/**
 * Microsoft expires automated SNDS links 30 days after creation or refresh, and no API refreshes
 * them: a person must. Pure, so `status`, the weekly report and every ingest run agree.
 */

export type LinkState = 'ok' | 'warn' | 'expired' | 'unknown';

export interface LinkExpiry {
  /** The first day the link no longer works (linkCreatedOn + lifetime); null without linkCreatedOn. */
  expiresOn: string | null;
  /** Days from today to expiresOn (0 = expires today, negative = expired). */
  daysLeft: number | null;
  state: LinkState;
}

export function linkExpiry(feed: { linkCreatedOn?: string | undefined }, today: string, lifetimeDays: number, warnDays: number): LinkExpiry {
  if (!feed.linkCreatedOn) return { expiresOn: null, daysLeft: null, state: 'unknown' };
  const expiresOn = addDays(feed.linkCreatedOn, lifetimeDays);
  const daysLeft = daysBetween(today, expiresOn);
  const state: LinkState = daysLeft <= 0 ? 'expired' : daysLeft <= warnDays ? 'warn' : 'ok';
  return { expiresOn, daysLeft, state };
}

/** What a person must do, in words: used in warnings and in the expired-link error. */
export function linkFixAdvice(feedName: string): string {
  return (
    `refresh the link on the SNDS portal's Automated Data Access page (https://substrate.office.com/ip-domain-management-snds/SNDS/Auto), ` +
    `put the new link into snds.feeds[name=${feedName}] (dataUrl/statusUrl or their *File) and set its linkCreatedOn to the day you refreshed it`
  );
}

export function describeLinkExpiry(feedName: string, expiry: LinkExpiry): string | null {
  if (expiry.state === 'warn') {
    return `SNDS feed "${feedName}": its automated link expires on ${expiry.expiresOn} (${expiry.daysLeft} day${expiry.daysLeft === 1 ? '' : 's'} left); ${linkFixAdvice(feedName)}`;
  }
  if (expiry.state === 'expired') return `SNDS feed "${feedName}": its automated link expired on ${expiry.expiresOn}; ${linkFixAdvice(feedName)}`;
  return null;
}
