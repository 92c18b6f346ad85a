import { describe, expect, it } from 'vitest';
import { SeenRows } from '../../../ingest/snds/seen-rows.js';

describe('SeenRows: the first line of each (IP, activity start) of a download', () => {
  it('remembers 300,000 distinct keys through its growth, none taken for another, and answers each repeat with its first line', () => {
    const seen = new SeenRows();
    const key = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},11/${1 + (i % 28)}/2026 4:00 PM`;
    for (let i = 0; i < 300_000; i++) {
      const k = key(i);
      expect(seen.firstLine(k, k.length, i + 1)).toBeNull();
    }
    for (const i of [0, 1, 4095, 4096, 123_456, 299_999]) {
      const k = key(i);
      expect(seen.firstLine(k, k.length, 1_000_000)).toBe(i + 1);
    }
  });

  it('hashes only the range given: the rest of a line does not matter', () => {
    const seen = new SeenRows();
    const a = '10.0.0.1,11/6/2026 4:00 PM,11/7/2026 3:00 PM,1000';
    const b = '10.0.0.1,11/6/2026 4:00 PM,11/7/2026 3:00 PM,7';
    const end = (line: string) => line.indexOf(',', line.indexOf(',') + 1);
    expect(seen.firstLine(a, end(a), 1)).toBeNull();
    expect(seen.firstLine(b, end(b), 2)).toBe(1);
    const c = '10.0.0.1,11/6/2026 4:01 PM,11/7/2026 3:00 PM,7';
    expect(seen.firstLine(c, end(c), 3)).toBeNull();
  });
});
