import ipaddr from 'ipaddr.js';

/**
 * DNS blocklist zones and what their answers mean. A listed IP answers an A record in 127.0.0.0/8;
 * NXDOMAIN means not listed. Some operators answer in 127.255.255.0/24 (Spamhaus) to say "I will not
 * answer you" (public resolver, typo, over quota): that is a refused query, never a listing.
 */

export interface ZoneInfo {
  zone: string;
  operator: string;
  /** Meaning of each listing answer; answers not named here but in 127.0.0.0/8 are listings too. */
  codes: Record<string, string>;
  /** Answers that mean the query was refused, not that the IP is listed. */
  refused?: Record<string, string>;
  delist: string;
}

const SPAMHAUS_REFUSED = {
  '127.255.255.252': 'query refused: typing error in the DNSBL name',
  '127.255.255.254': 'query refused: query through a public or open resolver (use your own resolver or a Spamhaus DQS key)',
  '127.255.255.255': 'query refused: excessive number of queries',
};

/** The default zones (config `blocklists.zones` or `--zones` replace the list). */
export const DEFAULT_ZONES: readonly ZoneInfo[] = [
  {
    zone: 'zen.spamhaus.org',
    operator: 'Spamhaus (Outlook.com uses its data)',
    codes: {
      '127.0.0.2': 'SBL: Spamhaus Blocklist (spam source or spam operation)',
      '127.0.0.3': 'SBL CSS: snowshoe spam / low reputation',
      '127.0.0.4': 'XBL: exploited host (CBL: botnet, malware, open proxy)',
      '127.0.0.5': 'XBL: exploited host',
      '127.0.0.6': 'XBL: exploited host',
      '127.0.0.7': 'XBL: exploited host',
      '127.0.0.9': 'SBL DROP: hijacked or leased to spammers',
      '127.0.0.10': 'PBL (ISP): end-user range that should not send directly',
      '127.0.0.11': 'PBL (Spamhaus): end-user range that should not send directly',
    },
    refused: SPAMHAUS_REFUSED,
    delist: 'https://check.spamhaus.org/',
  },
  {
    zone: 'bl.spamcop.net',
    operator: 'SpamCop',
    codes: { '127.0.0.2': 'reported as a spam source by SpamCop users (expires by itself within 24 h after reports stop)' },
    delist: 'https://www.spamcop.net/bl.shtml',
  },
  {
    zone: 'b.barracudacentral.org',
    operator: 'Barracuda Reputation Block List',
    codes: { '127.0.0.2': 'poor reputation at Barracuda (BRBL)' },
    delist: 'https://www.barracudacentral.org/rbl/removal-request',
  },
  {
    zone: 'psbl.surriel.com',
    operator: 'Passive Spam Block List',
    codes: { '127.0.0.2': 'sent mail to PSBL spam traps' },
    delist: 'https://psbl.org/',
  },
  {
    zone: 'bl.mailspike.net',
    operator: 'Mailspike',
    codes: { '127.0.0.2': 'Mailspike blacklist: worst reputation', '127.0.0.10': 'worst reputation', '127.0.0.11': 'very bad reputation', '127.0.0.12': 'bad reputation' },
    delist: 'https://mailspike.org/iplookup.html',
  },
  {
    zone: 'dnsbl-1.uceprotect.net',
    operator: 'UCEPROTECT level 1',
    codes: { '127.0.0.2': 'the single IP sent to UCEPROTECT spam traps (expires after 7 days without hits)' },
    delist: 'https://www.uceprotect.net/en/rblcheck.php',
  },
];

export function zoneInfo(zone: string): ZoneInfo {
  const known = DEFAULT_ZONES.find((z) => z.zone === zone.toLowerCase());
  return known ?? { zone: zone.toLowerCase(), operator: zone, codes: {}, delist: '' };
}

/** The query name: reversed octets for IPv4 (`2.0.0.127.zone`), reversed nibbles for IPv6 (RFC 5782). */
export function dnsblQueryName(ip: string, zone: string): string {
  const addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv4') return `${(addr as ipaddr.IPv4).octets.slice().reverse().join('.')}.${zone}`;
  const hex = (addr as ipaddr.IPv6).toByteArray().map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.split('').reverse().join('.')}.${zone}`;
}

export type Interpretation =
  | { outcome: 'listed'; meaning: string }
  | { outcome: 'refused'; meaning: string }
  | { outcome: 'not_listed'; meaning: null }
  | { outcome: 'error'; meaning: string };

/** What a zone's A answers mean. An empty answer is "not listed". */
export function interpretAnswer(info: ZoneInfo, answers: readonly string[]): Interpretation {
  if (answers.length === 0) return { outcome: 'not_listed', meaning: null };
  const refused = answers.map((a) => info.refused?.[a] ?? (a.startsWith('127.255.255.') ? `query refused by ${info.zone} (${a})` : null)).filter(Boolean);
  if (refused.length > 0) return { outcome: 'refused', meaning: refused[0]! };
  const listing = answers.filter((a) => a.startsWith('127.'));
  if (listing.length === 0) {
    // Expired zones are sometimes wildcarded to a real address: that answers "listed" for everyone.
    return { outcome: 'error', meaning: `answer outside 127.0.0.0/8 (${answers.join(', ')}): the zone may be dead or wildcarded` };
  }
  return { outcome: 'listed', meaning: listing.map((a) => info.codes[a] ?? `listed (${a})`).join('; ') };
}
