import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseStatusExport } from '../../../ingest/snds/parse-status-export.js';

describe('parseStatusExport', () => {
  it('reads the reference rows of snds.md, Yes and True alike', () => {
    const { rows, errors } = parseStatusExport(readFileSync(new URL('../../fixtures/snds/ip-status-reference.csv', import.meta.url), 'utf8'));
    expect(errors).toEqual([]);
    expect(rows).toEqual([
      { line: 1, firstIp: '1.1.1.0', lastIp: '1.1.1.1', blocked: true, details: 'Blocked due to user complaints or other evidence of spamming' },
      { line: 2, firstIp: '1.1.1.254', lastIp: '1.1.2.1', blocked: true, details: 'Blocked due to user complaints or other evidence of spamming' },
      { line: 3, firstIp: '176.119.155.0', lastIp: '176.119.155.255', blocked: true, details: 'Blocked due to user complaints or other evidence of spamming' },
    ]);
  });

  it('accepts No/False in any case, a BOM and CRLF; rejects bad lines with reasons', () => {
    const text = '\uFEFF10.0.0.1,10.0.0.9,no,SpamHaus SBL/XBL\r\n10.0.0.1,10.0.0.9,FALSE,Symantec Brightmail\r\n10.0.0.9,10.0.0.1,Yes,x\r\n10.0.0.1,10.0.0.2,maybe,x\r\n';
    const { rows, errors } = parseStatusExport(text);
    expect(rows.map((r) => r.blocked)).toEqual([false, false]);
    expect(errors.map((e) => [e.line, e.reason.split(':')[0]])).toEqual([
      [3, 'first IP 10.0.0.9 is after last IP 10.0.0.1'],
      [4, 'column 3 (blocked)'],
    ]);
  });

  it('never throws and accounts for every line', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 60 }).filter((s) => !/[\n"]/.test(s)), { maxLength: 20 }), (lines) => {
        const { rows, errors } = parseStatusExport(lines.join('\n'));
        const expected = lines.flatMap((l, i) => (l.replace(/\r$/, '').trim() === '' || (i === 0 && /^first\s*ip$/i.test(l.split(',')[0]!.trim())) ? [] : [i + 1]));
        expect([...rows.map((r) => r.line), ...errors.map((e) => e.line)].sort((a, b) => a - b)).toEqual(expected);
      }),
    );
  });
});
