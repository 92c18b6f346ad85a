import ipaddr from 'ipaddr.js';

/**
 * IP addresses as people type them, strictly: ipaddr.js also accepts the classful shorthands of
 * inet_aton ("203.0.113" is 203.0.0.113, "10.1" is 10.0.0.1), which turns a typo into another
 * address. Only dotted quads and IPv6 pass here.
 */
export function isStrictIp(text: string): boolean {
  const value = text.trim();
  return value.includes(':') ? ipaddr.IPv6.isValid(value) : ipaddr.IPv4.isValidFourPartDecimal(value);
}

/** The address in PostgreSQL's host() form (RFC 5952 for IPv6), or null. */
export function canonicalIp(text: string): string | null {
  return isStrictIp(text) ? ipaddr.parse(text.trim()).toString() : null;
}
