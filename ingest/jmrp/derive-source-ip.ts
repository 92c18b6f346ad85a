import ipaddr from 'ipaddr.js';
import { receivedDate } from '../mailbox/mail-date.js';
import type { HeaderMap } from '../mailbox/mime.js';

/** Where the sending IP of a complaint came from (stored in source_ip_origin). */
export type IpOrigin = 'reported' | 'auth_results' | 'received' | 'spf' | 'originating' | 'subject';

export interface SourceIp {
  ip: string;
  origin: IpOrigin;
  /** The date of the Received header that carried this IP (a fallback for the complaint time). */
  receivedAt: Date | null;
}

/** Tells whether an IP is one of ours (SNDS rows, configured pools). Passed in: the parser stays pure. */
export type KnownIpMatcher = (ip: string) => boolean;

/**
 * Microsoft's own networks: the hops Outlook.com / Exchange Online add inside their infrastructure
 * appear above the external hop in the original's Received chain and must be skipped to reach the
 * sender. IPv6 2603:1000::/24 holds the EXO front ends (2603:10b6::/32 and its siblings), 2a01:111::/32
 * is Microsoft's; the IPv4 ranges are Exchange Online Protection and Outlook.com's outbound/inbound
 * pools. A known sending IP of ours is never skipped, even inside these ranges.
 */
export const MICROSOFT_RANGES: readonly string[] = [
  '2603:1000::/24',
  '2a01:111::/32',
  '40.92.0.0/15',
  '40.107.0.0/16',
  '52.100.0.0/14',
  '104.47.0.0/17',
  '65.54.0.0/16',
  '65.55.0.0/16',
  '157.55.0.0/16',
  '207.46.0.0/16',
];

const INTERNAL_RANGE_NAMES = new Set(['private', 'loopback', 'linkLocal', 'unspecified', 'uniqueLocal', 'carrierGradeNat', 'broadcast', 'multicast']);
const microsoftCidrs = MICROSOFT_RANGES.map((c) => ipaddr.parseCIDR(c));

/** A valid IP in canonical text form (IPv4-mapped IPv6 as IPv4), or null. */
export function normaliseIp(text: string | undefined | null): string | null {
  if (!text) return null;
  const trimmed = text.trim().replace(/^\[|\]$/g, '').replace(/^IPv6:/i, '');
  try {
    if (ipaddr.IPv4.isValidFourPartDecimal(trimmed)) return ipaddr.IPv4.parse(trimmed).toString();
    if (trimmed.includes(':') && ipaddr.IPv6.isValid(trimmed)) {
      const v6 = ipaddr.IPv6.parse(trimmed);
      return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String();
    }
  } catch {
    return null;
  }
  return null;
}

/** Private, loopback, link-local, CGNAT or a Microsoft network: a hop inside the receiver. */
export function isInternalHop(ip: string): boolean {
  try {
    const addr = ipaddr.parse(ip);
    if (INTERNAL_RANGE_NAMES.has(addr.range())) return true;
    for (const [range, bits] of microsoftCidrs) {
      if (range!.kind() === addr.kind() && addr.match(range!, bits!)) return true;
    }
    return false;
  } catch {
    return true;
  }
}

/** `Source-IP: 192.0.2.1 (mx.example.com)`: the address without its trailing PTR name. */
export function parseReportedIp(value: string | undefined): string | null {
  if (!value) return null;
  const withoutPtr = value.replace(/\([^)]*\)/g, ' ').trim().split(/[\s,;]+/)[0];
  return normaliseIp(withoutPtr);
}

/** The IPs of a Received header's `from` clause: bracketed/parenthesised ones (what the receiver saw)
 * first, then bare ones (the HELO name, untrusted). */
export function receivedFromIps(value: string): string[] {
  const trimmed = value.trimStart();
  if (!/^from\s/i.test(trimmed)) return [];
  const byAt = trimmed.search(/\sby\s/i);
  const clause = byAt === -1 ? trimmed : trimmed.slice(0, byAt);
  const out: string[] = [];
  for (const m of clause.matchAll(/[[(]([^\][()]*)[\])]/g)) {
    for (const token of m[1]!.split(/[\s,]+/)) {
      const ip = normaliseIp(token.replace(/^IPv6:/i, ''));
      if (ip && !out.includes(ip)) out.push(ip);
    }
  }
  for (const token of clause.slice(4).split(/[\s()[\],]+/)) {
    const ip = normaliseIp(token);
    if (ip && !out.includes(ip)) out.push(ip);
  }
  return out;
}

interface Candidate {
  ip: string;
  origin: IpOrigin;
}

/**
 * The sending IP of a complaint. `Source-IP` when the report gives one. Otherwise every candidate
 * from the original's headers, in this order: the `sender IP is X` comment of Authentication-Results,
 * the Received chain from the top (skipping the receiver's internal hops), X-Originating-IP,
 * Received-SPF client-ip=, and for legacy reports the IP in the subject. The first candidate that is
 * one of our known sending IPs wins; without one, the first candidate.
 */
export function deriveSourceIp(input: {
  reported?: string | undefined;
  original: HeaderMap | null;
  subject?: string | null | undefined;
  legacy: boolean;
  isKnownIp?: KnownIpMatcher | undefined;
}): SourceIp | null {
  const received = input.original?.get('received') ?? [];
  const withDate = (ip: string, origin: IpOrigin): SourceIp => ({ ip, origin, receivedAt: dateOfHopCarrying(received, ip) });

  const reported = parseReportedIp(input.reported);
  if (reported) return withDate(reported, 'reported');

  const candidates: Candidate[] = [];
  const push = (ip: string | null, origin: IpOrigin) => {
    if (ip) candidates.push({ ip, origin });
  };
  const original = input.original;
  if (original) {
    for (const value of original.get('authentication-results') ?? []) {
      for (const m of value.matchAll(/sender\s+ip\s+is\s+([0-9a-fA-F.:]+)/gi)) push(normaliseIp(m[1]), 'auth_results');
    }
    for (const value of received) for (const ip of receivedFromIps(value)) push(ip, 'received');
    for (const value of original.get('x-originating-ip') ?? []) push(normaliseIp(value.replace(/[[\]\s]/g, '')), 'originating');
    for (const value of original.get('received-spf') ?? []) {
      const m = /client-ip\s*=\s*([0-9a-fA-F.:]+)/i.exec(value);
      push(normaliseIp(m?.[1]), 'spf');
    }
  }
  if (input.legacy && input.subject) {
    const m = /complaint about message from\s+\[?([0-9a-fA-F.:]+)/i.exec(input.subject);
    push(normaliseIp(m?.[1]?.replace(/[.:]+$/, '')), 'subject');
  }

  const known = input.isKnownIp;
  if (known) {
    const mine = candidates.find((c) => safeKnown(known, c.ip));
    if (mine) return withDate(mine.ip, mine.origin);
  }
  const external = candidates.find((c) => !isInternalHop(c.ip));
  return external ? withDate(external.ip, external.origin) : null;
}

function safeKnown(matcher: KnownIpMatcher, ip: string): boolean {
  try {
    return matcher(ip);
  } catch {
    return false;
  }
}

/** The date of the topmost Received header whose from-clause names this IP. */
function dateOfHopCarrying(received: string[], ip: string): Date | null {
  for (const value of received) if (receivedFromIps(value).includes(ip)) return receivedDate(value);
  return null;
}

/**
 * A matcher over a set of single IPs (SNDS rows) and CIDR ranges (configured pools). Built once per
 * run by the loader; invalid entries are ignored (the config validator reports them).
 */
export function knownIpMatcher(ips: Iterable<string>, cidrs: Iterable<string> = []): KnownIpMatcher {
  const exact = new Set<string>();
  for (const ip of ips) {
    const n = normaliseIp(ip.replace(/\/(32|128)$/, ''));
    if (n) exact.add(n);
  }
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  for (const cidr of cidrs) {
    try {
      ranges.push(cidr.includes('/') ? ipaddr.parseCIDR(cidr) : [ipaddr.parse(cidr), cidr.includes(':') ? 128 : 32]);
    } catch {
      // not a range: ignored
    }
  }
  return (ip) => {
    if (exact.has(ip)) return true;
    if (ranges.length === 0) return false;
    const addr = ipaddr.parse(ip);
    return ranges.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits));
  };
}
