import ipaddr from 'ipaddr.js';
import { receivedDate } from '../mailbox/mail-date.js';
import { clipHeaderValue, trimEndOf, type HeaderMap } from '../mailbox/mime.js';

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
const microsoftV6 = MICROSOFT_RANGES.filter((c) => c.includes(':')).map((c) => ipaddr.parseCIDR(c));

/**
 * IPv4 is checked with integer arithmetic: every Received header of every report passes through here,
 * and ipaddr.js's general parser costs about a millisecond per report (it would be the bottleneck of
 * the whole ingest). IPv6 (rarer, and longer to get right) goes through ipaddr.js.
 */
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4ToInt(text: string): number | null {
  const m = IPV4.exec(text);
  if (!m) return null;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part.charCodeAt(0) === 0x30) return null; // leading zero: octal ambiguity
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

function v4Range(cidr: string): [number, number] {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(ipv4ToInt(base!)! / size) * size;
  return [start, start + size - 1];
}

/** Private, loopback, link-local, unspecified, CGNAT and multicast/reserved-above IPv4. */
const NON_PUBLIC_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '169.254.0.0/16', '0.0.0.0/8', '100.64.0.0/10', '224.0.0.0/3'].map(v4Range);
const MICROSOFT_V4 = MICROSOFT_RANGES.filter((c) => !c.includes(':')).map(v4Range);

/** Results of the IPv6 path, remembered: the same Microsoft hops recur in report after report. */
const v6Cache = new Map<string, string | null>();
const v6KindCache = new Map<string, V6Kind>();
type V6Kind = 'non_public' | 'microsoft' | 'public';

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size > 20_000) cache.clear();
  cache.set(key, value);
  return value;
}

/** A valid IP in canonical text form (IPv4-mapped IPv6 as IPv4), or null. */
export function normaliseIp(text: string | undefined | null): string | null {
  if (!text) return null;
  const cached = v6Cache.get(text);
  if (cached !== undefined) return cached;
  let trimmed = text.trim();
  if (trimmed.length < 2 || trimmed.length > 60) return null;
  if (trimmed.charCodeAt(0) === 0x5b) trimmed = trimmed.replace(/^\[|\]$/g, '');
  if (/^ipv6:/i.test(trimmed)) trimmed = trimmed.slice(5);
  if (!trimmed.includes(':')) return ipv4ToInt(trimmed) === null ? null : trimmed;
  let result: string | null = null;
  try {
    if (/^[0-9a-f:.]+$/i.test(trimmed) && ipaddr.IPv6.isValid(trimmed)) {
      const v6 = ipaddr.IPv6.parse(trimmed);
      result = v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String();
    }
  } catch {
    result = null;
  }
  return remember(v6Cache, text, result);
}

/** Private, loopback, link-local, CGNAT, multicast or unparseable: never a sender on the Internet. */
export function isNonPublic(ip: string): boolean {
  const v4 = ipv4ToInt(ip);
  if (v4 !== null) return NON_PUBLIC_V4.some(([start, end]) => v4 >= start && v4 <= end);
  return v6Kind(ip) === 'non_public';
}

/** One of Microsoft's own networks (MICROSOFT_RANGES). */
export function isMicrosoftNetwork(ip: string): boolean {
  const v4 = ipv4ToInt(ip);
  if (v4 !== null) return MICROSOFT_V4.some(([start, end]) => v4 >= start && v4 <= end);
  return v6Kind(ip) === 'microsoft';
}

/** A hop inside the receiver: non-public, or a Microsoft network. */
export function isInternalHop(ip: string): boolean {
  return isNonPublic(ip) || isMicrosoftNetwork(ip);
}

function v6Kind(ip: string): V6Kind {
  const cached = v6KindCache.get(ip);
  if (cached !== undefined) return cached;
  let kind: V6Kind = 'non_public';
  try {
    const addr = ipaddr.parse(ip);
    if (INTERNAL_RANGE_NAMES.has(addr.range())) kind = 'non_public';
    else if (microsoftV6.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits))) kind = 'microsoft';
    else kind = 'public';
  } catch {
    kind = 'non_public';
  }
  return remember(v6KindCache, ip, kind);
}

/** `Source-IP: 192.0.2.1 (mx.example.com)`: the address without its trailing PTR name. */
export function parseReportedIp(value: string | undefined): string | null {
  if (!value) return null;
  // Only the first token is wanted: a hostile 10 MB value is read from its start.
  const withoutPtr = withoutComments(clipHeaderValue(value)).trim().split(/[\s,;]+/)[0];
  return normaliseIp(withoutPtr);
}

/** The value with every parenthesised comment (nested or unclosed) replaced by a space, in one pass
 * (a /\([^)]*\)/ replace rescans from every unclosed parenthesis: quadratic on hostile values). */
function withoutComments(value: string): string {
  let out = '';
  let depth = 0;
  for (const c of value) {
    if (c === '(') {
      if (depth++ === 0) out += ' ';
    } else if (c === ')' && depth > 0) depth -= 1;
    else if (depth === 0) out += c;
  }
  return out;
}

/** A receiver records one address for the host that connected (with an IPv4 and an IPv6 form at
 * most, or a proxy's and the client's): a hop naming more is hostile, and only its first ones are read. */
export const MAX_IPS_PER_HOP = 10;

/**
 * The IPs of a Received header's `from` clause (the first MAX_IPS_PER_HOP). The first token is the name
 * the sender gave in HELO, untrusted even as an address literal (`from [203.0.113.9] (unknown
 * [198.51.100.77])`); the bracketed or parenthesised addresses after it are what the receiver saw, so
 * they come first. The HELO token's address counts only when the receiver recorded none (Exim's
 * `from [192.0.2.1] (helo=x)`).
 */
export function receivedFromIps(value: string): string[] {
  const trimmed = value.trimStart();
  if (!/^from\s/i.test(trimmed)) return [];
  const byAt = trimmed.search(/\sby\s/i);
  const clause = byAt === -1 ? trimmed : trimmed.slice(0, byAt);
  const helo = /^from\s+(\[[^\]]*\]|[^\s(]*)/i.exec(clause)!;
  const seen = clause.slice(helo[0].length);
  // A Set, and a cap: a list searched for each new IP was quadratic on a hop of thousands (29 s for 2 MB).
  const out = new Set<string>();
  const take = (ip: string | null) => {
    if (ip) out.add(ip);
    return out.size < MAX_IPS_PER_HOP;
  };
  read: for (const m of seen.matchAll(/[[(]([^\][()]*)[\])]/g)) {
    // qmail's `(HELO name)` and Exim's `(helo=name)` repeat the HELO: not what the receiver saw.
    if (/^\s*(?:helo|ehlo)[\s=]/i.test(m[1]!)) continue;
    for (const token of m[1]!.split(/[\s,]+/)) if (!take(normaliseIp(token.replace(/^IPv6:/i, '')))) break read;
  }
  // The bare names (HELO) only when the receiver recorded no address at all.
  if (out.size > 0) return [...out];
  for (const token of clause.slice(4).split(/[\s()[\],]+/)) if (!take(normaliseIp(token))) break;
  return [...out];
}

interface Candidate {
  ip: string;
  origin: IpOrigin;
}

/**
 * The sending IP of a complaint. `Source-IP` when the report gives one. Otherwise every candidate
 * from the original's headers, in this order: the `sender IP is X` comment of Authentication-Results,
 * the Received chain from the top (skipping the receiver's internal hops: non-public addresses and
 * Microsoft's networks), X-Originating-IP, Received-SPF client-ip=, and for legacy reports the IP in
 * the subject. The first candidate that is one of our known sending IPs wins; without one, the first
 * public candidate.
 */
export function deriveSourceIp(input: {
  reported?: string | undefined;
  original: HeaderMap | null;
  subject?: string | null | undefined;
  legacy: boolean;
  isKnownIp?: KnownIpMatcher | undefined;
}): SourceIp | null {
  const received = input.original?.get('received') ?? [];
  const hops = received.map((value) => ({ value, ips: receivedFromIps(value) }));
  const withDate = (ip: string, origin: IpOrigin): SourceIp => ({ ip, origin, receivedAt: dateOfHopCarrying(hops, ip) });

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
    for (const hop of hops) for (const ip of hop.ips) push(ip, 'received');
    for (const value of original.get('x-originating-ip') ?? []) push(normaliseIp(value.replace(/[[\]\s]/g, '')), 'originating');
    for (const value of original.get('received-spf') ?? []) {
      const m = /client-ip\s*=\s*([0-9a-fA-F.:]+)/i.exec(value);
      push(normaliseIp(m?.[1]), 'spf');
    }
  }
  if (input.legacy && input.subject) {
    const m = /complaint about message from\s+\[?([0-9a-fA-F.:]+)/i.exec(input.subject);
    push(normaliseIp(m?.[1] === undefined ? undefined : trimEndOf(m[1], '.:')), 'subject');
  }

  const known = input.isKnownIp;
  if (known) {
    const mine = candidates.find((c) => safeKnown(known, c.ip));
    if (mine) return withDate(mine.ip, mine.origin);
  }
  // Microsoft's networks are skipped only as Received hops (its internal relays). Elsewhere they are
  // what Microsoft itself saw connecting (Authentication-Results, SPF): a sender relaying through
  // Microsoft 365 really does send from them.
  const external = candidates.find((c) => (c.origin === 'received' ? !isInternalHop(c.ip) : !isNonPublic(c.ip)));
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
function dateOfHopCarrying(hops: { value: string; ips: string[] }[], ip: string): Date | null {
  for (const hop of hops) if (hop.ips.includes(ip)) return receivedDate(hop.value);
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
  const v4: [number, number][] = [];
  const v6: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  for (const cidr of cidrs) {
    try {
      const [range, bits] = cidr.includes('/') ? ipaddr.parseCIDR(cidr) : [ipaddr.parse(cidr), cidr.includes(':') ? 128 : 32];
      if (range.kind() === 'ipv4') v4.push(v4Range(`${range.toString()}/${bits}`));
      else v6.push([range, bits]);
    } catch {
      // not a range: ignored
    }
  }
  return (ip) => {
    if (exact.has(ip)) return true;
    const n = ipv4ToInt(ip);
    if (n !== null) return v4.some(([start, end]) => n >= start && n <= end);
    if (v6.length === 0) return false;
    const addr = ipaddr.parse(ip);
    return v6.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits));
  };
}
