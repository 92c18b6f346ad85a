import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_LINE_BYTES, RecordCutter } from '../../../ingest/snds/csv-records.js';

/** Push the pieces, then end; everything handed out, in order. */
function cutAll(cutter: RecordCutter, pieces: readonly Buffer[]): Buffer[] {
  const out = pieces.map((piece) => cutter.push(piece));
  out.push(cutter.end());
  return out;
}

describe('RecordCutter', () => {
  it('stops at a line over MAX_LINE_BYTES without a line break: the lines before it handed out, nothing carried after it', () => {
    const cutter = new RecordCutter();
    const head = Buffer.from('10.0.0.1,a\n10.0.0.2,"quoted\n');
    const mb = Buffer.alloc(1024 * 1024, 0x61);
    const out = cutAll(cutter, [head, mb, mb, mb, mb, mb, Buffer.from('\n10.0.0.3,b\n')]);
    // The open quote of line 2 would make the cutter wait for more lines; the long line ends that.
    expect(Buffer.concat(out).toString()).toBe(head.toString());
    expect(cutter.overlong).toEqual({ at: head.length });
    expect(out.map((b) => b.length)).toEqual([0, 0, head.length, 0, 0, 0, 0, 0]);
    // A line of exactly the cap is still a line.
    const exact = new RecordCutter();
    const line = Buffer.concat([Buffer.alloc(MAX_LINE_BYTES, 0x61), Buffer.from('\n')]);
    expect(Buffer.concat(cutAll(exact, [line.subarray(0, 1000), line.subarray(1000)])).equals(line)).toBe(true);
    expect(exact.overlong).toBeNull();
  });

  it('hands out every byte at line boundaries, or stops at the first line over the cap, however the bytes arrive', () => {
    const text = fc.array(fc.constantFrom('a', '"', '\n', '\r', ','), { maxLength: 200 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(text, fc.array(fc.nat(200), { maxLength: 12 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 80 }), (input, cuts, maxLine, maxCarry) => {
        const bytes = Buffer.from(input);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...points].map((from, i) => bytes.subarray(from, [...points, bytes.length][i]));
        const cutter = new RecordCutter(maxCarry, maxLine);
        const out = cutAll(cutter, pieces);
        let at: number | null = null;
        let pos = 0;
        for (const line of input.split('\n')) {
          if (line.length > maxLine) {
            at = pos;
            break;
          }
          pos += line.length + 1;
        }
        expect(cutter.overlong?.at ?? null).toBe(at);
        expect(Buffer.concat(out).toString()).toBe(at === null ? input : input.slice(0, at));
        // Every portion but the last ends at a line break.
        for (const portion of out.slice(0, -1)) if (portion.length) expect(portion[portion.length - 1]).toBe(0x0a);
      }),
      { numRuns: 500 },
    );
  });
});
