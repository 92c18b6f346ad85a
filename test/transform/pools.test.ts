import { describe, expect, it } from 'vitest';
import { poolRanges, PoolConfigError } from '../../transform/pools.js';

describe('poolRanges', () => {
  it('always adds pool "all" for every IPv4 and IPv6 address', () => {
    expect(poolRanges({})).toEqual([
      { pool: 'all', cidr: '0.0.0.0/0' },
      { pool: 'all', cidr: '::/0' },
    ]);
  });

  it('normalises entries: bare addresses become /32 or /128, host bits are cleared, duplicates collapse', () => {
    expect(poolRanges({ marketing: ['203.0.113.7', '198.51.100.77/24', '198.51.100.0/24 ', '2001:db8::1'] }).filter((r) => r.pool !== 'all')).toEqual([
      { pool: 'marketing', cidr: '203.0.113.7/32' },
      { pool: 'marketing', cidr: '198.51.100.0/24' },
      { pool: 'marketing', cidr: '2001:db8::1/128' },
    ]);
  });

  it('keeps a configured "all" instead of the default', () => {
    expect(poolRanges({ all: ['10.0.0.0/8'] })).toEqual([{ pool: 'all', cidr: '10.0.0.0/8' }]);
  });

  it('names the config key of an entry that is not a range', () => {
    expect(() => poolRanges({ transactional: ['10.0.0.0/8', '10.0.0.300/24'] })).toThrow(PoolConfigError);
    expect(() => poolRanges({ transactional: ['10.0.0.0/8', 'mail.example.com'] })).toThrow(/pools\.transactional\[1\]: "mail\.example\.com" is not an IP address or CIDR range/);
  });
});
