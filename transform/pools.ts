import ipaddr from 'ipaddr.js';
import type { Config } from '../config/schema.js';
import type { Session } from '../db/connection.js';

/** The pool that holds every IP, whatever the config says. */
export const ALL_POOL = 'all';

export interface PoolRange {
  pool: string;
  cidr: string;
}

export class PoolConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolConfigError';
  }
}

/**
 * The config's `pools` as (pool, network CIDR) pairs, each once. A bare address is its own /32 (/128);
 * host bits are cleared ("10.0.0.7/24" means 10.0.0.0/24). Pool "all" is every IPv4 and IPv6 address
 * unless the config defines it. Pure, so the error names the config key before anything is written.
 */
export function poolRanges(pools: Config['pools']): PoolRange[] {
  const ranges = new Map<string, PoolRange>();
  const add = (pool: string, cidr: string) => ranges.set(`${pool}\u0000${cidr}`, { pool, cidr });
  for (const [pool, entries] of Object.entries(pools)) {
    entries.forEach((entry, index) => add(pool, normaliseCidr(entry.trim(), `pools.${pool}[${index}]`)));
  }
  if (!(ALL_POOL in pools)) {
    add(ALL_POOL, '0.0.0.0/0');
    add(ALL_POOL, '::/0');
  }
  return [...ranges.values()];
}

function normaliseCidr(text: string, key: string): string {
  const withMask = text.includes('/') ? text : `${text}/${ipaddr.IPv6.isValid(text) && !ipaddr.IPv4.isValid(text) ? 128 : 32}`;
  if (!ipaddr.isValidCIDR(withMask)) throw new PoolConfigError(`${key}: "${text}" is not an IP address or CIDR range such as 203.0.113.0/24`);
  const [address, length] = ipaddr.parseCIDR(withMask);
  const network = address.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(withMask) : ipaddr.IPv6.networkAddressFromCIDR(withMask);
  return `${network.toString()}/${length}`;
}

/** Rewrite repwatch.ip_pool from the config, so the pool views follow the config as it is now. */
export async function refreshPools(session: Pick<Session, 'query'>, pools: Config['pools']): Promise<number> {
  const ranges = poolRanges(pools);
  await session.query('delete from repwatch.ip_pool');
  await session.query(
    `insert into repwatch.ip_pool (pool, cidr)
     select pool, cidr from unnest($1::text[], $2::cidr[]) as t(pool, cidr)`,
    [ranges.map((r) => r.pool), ranges.map((r) => r.cidr)],
  );
  return ranges.length;
}
