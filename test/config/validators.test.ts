import { describe, expect, it } from 'vitest';
import { isIpOrCidr, isPostgresUrl, isResolverAddress } from '../../config/schema.js';

describe('config validators', () => {
  it('pool entries: IPv4/IPv6 addresses and CIDR ranges only', () => {
    for (const ok of ['203.0.113.7', '203.0.113.0/24', '0.0.0.0/0', '2001:db8::1', '2001:db8::/32', ' 198.51.100.0/25 ']) expect(isIpOrCidr(ok), ok).toBe(true);
    for (const bad of ['mail.example.com', '10.1', '203.0.113.0/33', '2001:db8::/129', '203.0.113.0/', '203.0.113.0/24/1', '', '1.2.3.4/x']) expect(isIpOrCidr(bad), bad).toBe(false);
  });

  it('resolver: IP, IP:port, [IPv6]:port or a bare IPv6 address', () => {
    for (const ok of ['127.0.0.1', '127.0.0.1:53', '[::1]:5353', '[2001:db8::53]', '::1', '2001:db8::53']) expect(isResolverAddress(ok), ok).toBe(true);
    for (const bad of ['nonsense', 'dns.example:53', '127.0.0.1:0', '127.0.0.1:70000', '127.1', '[nonsense]:53', '1.2.3.4:53:1', '']) expect(isResolverAddress(bad), bad).toBe(false);
  });

  it('database URL: postgres:// or postgresql:// only', () => {
    expect(isPostgresUrl('postgres://u:p@h:5432/d')).toBe(true);
    expect(isPostgresUrl('postgresql://h/d')).toBe(true);
    for (const bad of ['not a url', 'mysql://h/d', 'h:5432/d']) expect(isPostgresUrl(bad), bad).toBe(false);
  });
});
