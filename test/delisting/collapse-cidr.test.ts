import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { collapseToCidrs } from '../../delisting/collapse-cidr.js';

describe('collapseToCidrs', () => {
  it('collapses runs into the fewest aligned CIDR blocks and keeps lone IPs bare', () => {
    expect(collapseToCidrs(['203.0.113.13', '203.0.113.12'])).toEqual(['203.0.113.12/31']);
    expect(collapseToCidrs(['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13', '203.0.113.14'])).toEqual(['203.0.113.10/31', '203.0.113.12/31', '203.0.113.14']);
    expect(collapseToCidrs(Array.from({ length: 8 }, (_, i) => `198.51.100.${16 + i}`))).toEqual(['198.51.100.16/29']);
    expect(collapseToCidrs(['198.51.100.27'])).toEqual(['198.51.100.27']);
    expect(collapseToCidrs(['203.0.113.0/25', '203.0.113.128/25', '203.0.113.7'])).toEqual(['203.0.113.0/24']);
    expect(collapseToCidrs(['203.0.113.255', '203.0.114.0'])).toEqual(['203.0.113.255', '203.0.114.0']);
    expect(collapseToCidrs(['2001:db8::1', '2001:db8::0', '203.0.113.1'])).toEqual(['203.0.113.1', '2001:db8::/127']);
    expect(collapseToCidrs([])).toEqual([]);
  });

  it('covers exactly the input addresses (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 60 }), (lasts) => {
        const ips = lasts.map((n) => `203.0.113.${n}`);
        const blocks = collapseToCidrs(ips);
        const covered = new Set<number>();
        for (const b of blocks) {
          const [addr, bits] = b.includes('/') ? ipaddr.parseCIDR(b) : [ipaddr.parse(b), 32];
          const start = (addr as ipaddr.IPv4).octets[3]!;
          for (let i = 0; i < 2 ** (32 - bits); i++) covered.add(start + i);
        }
        expect([...covered].sort((a, b) => a - b)).toEqual([...lasts].sort((a, b) => a - b));
      }),
    );
  });
});
