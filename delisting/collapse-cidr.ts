import ipaddr from 'ipaddr.js';

/**
 * IPs (and ranges) collapsed into the fewest CIDR blocks, sorted: 203.0.113.8..15 becomes
 * 203.0.113.8/29, a lone IP stays a bare address. The Outlook.com form asks for "IPs or ranges
 * separated by semicolons", ranges as CIDR.
 */
export function collapseToCidrs(inputs: readonly string[]): string[] {
  const byKind: Record<'ipv4' | 'ipv6', [bigint, bigint][]> = { ipv4: [], ipv6: [] };
  for (const input of inputs) {
    const text = input.trim();
    if (!text) continue;
    const [addr, bits] = text.includes('/') ? ipaddr.parseCIDR(text) : [ipaddr.parse(text), null];
    const kind = addr.kind();
    const width = kind === 'ipv4' ? 32 : 128;
    const value = toBigInt(addr);
    const size = 1n << BigInt(width - (bits ?? width));
    const start = (value / size) * size;
    byKind[kind].push([start, start + size - 1n]);
  }
  const out: string[] = [];
  for (const kind of ['ipv4', 'ipv6'] as const) {
    const width = kind === 'ipv4' ? 32 : 128;
    const ranges = byKind[kind].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const merged: [bigint, bigint][] = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1] + 1n) last[1] = r[1] > last[1] ? r[1] : last[1];
      else merged.push([r[0], r[1]]);
    }
    for (const [first, last] of merged) out.push(...rangeToCidrs(first, last, width, kind));
  }
  return out;
}

function rangeToCidrs(first: bigint, last: bigint, width: number, kind: 'ipv4' | 'ipv6'): string[] {
  const out: string[] = [];
  let start = first;
  while (start <= last) {
    // The largest aligned block that starts here and does not run past the end.
    let bits = width;
    while (bits > 0) {
      const size = 1n << BigInt(width - bits + 1);
      if (start % size !== 0n || start + size - 1n > last) break;
      bits -= 1;
    }
    const text = fromBigInt(start, kind);
    out.push(bits === width ? text : `${text}/${bits}`);
    start += 1n << BigInt(width - bits);
  }
  return out;
}

function toBigInt(addr: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return addr.toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

function fromBigInt(value: bigint, kind: 'ipv4' | 'ipv6'): string {
  const length = kind === 'ipv4' ? 4 : 16;
  const bytes: number[] = [];
  let v = value;
  for (let i = 0; i < length; i++) {
    bytes.unshift(Number(v & 255n));
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}
