import ipaddr from 'ipaddr.js';

/** Field checks shared by the IP Data and IP Status parsers. */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** A single address (no prefix length) as PostgreSQL's inet accepts it, or null. */
export function normaliseIp(text: string): string | null {
  const value = text.trim();
  if (IPV4.test(value)) return value;
  if (value.includes(':') && ipaddr.IPv6.isValid(value) && !value.includes('%')) return ipaddr.IPv6.parse(value).toString();
  return null;
}

/** A non-negative integer count; null for empty; undefined when it is not a number. */
export function parseCount(text: string | undefined): number | null | undefined {
  const value = (text ?? '').trim();
  if (value === '') return null;
  if (!/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/** A cell that is absent, empty or only spaces is no value. */
export function textOrNull(text: string | undefined): string | null {
  if (text === undefined) return null;
  const value = text.trim();
  return value === '' ? null : value;
}

/** Comparable form of an IP for range checks (IPv4 before IPv6). */
export function ipOrder(ip: string): bigint {
  const parsed = ipaddr.parse(ip);
  const bytes = parsed.toByteArray();
  let n = parsed.kind() === 'ipv6' ? 1n << 128n : 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}
