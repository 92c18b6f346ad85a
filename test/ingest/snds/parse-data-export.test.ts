import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import Papa from 'papaparse';
import { cleanDataLine, complaintBandBounds, isMostlyBad, parseDataExport } from '../../../ingest/snds/parse-data-export.js';
import { parseSndsTimestamp, timestampParser } from '../../../ingest/snds/parse-timestamp.js';
import { forEachCsvRecord } from '../../../ingest/snds/csv-records.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/snds/${name}`, import.meta.url), 'utf8');

describe('parseDataExport on the reference rows of snds.md (byte for byte)', () => {
  const { rows, errors } = parseDataExport(fixture('ip-data-reference.csv'), { timezone: 'UTC' });

  it('reads all three lines, the 13-field one included', () => {
    expect(errors).toEqual([]);
    expect(rows.map((r) => r.ip)).toEqual(['1.1.1.0', '1.1.1.1', '149.72.205.104']);
  });

  it('keeps every column of the first row, raw timestamps included', () => {
    expect(rows[0]).toEqual({
      line: 1,
      ip: '1.1.1.0',
      day: '2019-12-31',
      activityStart: '2019-12-31T08:00:00.000Z',
      activityEnd: '2020-09-29T21:00:00.000Z',
      activityStartRaw: '12/31/2019 8:00 AM',
      activityEndRaw: '9/29/2020 9:00 PM',
      rcptCommands: 14129,
      dataCommands: 14129,
      messageRecipients: 13025,
      filterResult: 'GREEN',
      complaintBand: '< 0.1%',
      complaintRateLow: 0,
      complaintRateHigh: 0.001,
      trapStart: '2020-09-29T08:07:00.000Z',
      trapEnd: '2020-09-29T12:03:00.000Z',
      trapStartRaw: '9/29/2020 8:07 AM',
      trapEndRaw: '9/29/2020 12:03 PM',
      trapHits: 41,
      sampleHelo: null,
      jmrP1Sender: null,
      comments: null,
      extraColumns: null,
    });
  });

  it('reads the short row: empty trap period, zero hits, the comment in the 13th field', () => {
    const row = rows[2]!;
    expect(row).toMatchObject({ day: '2026-02-10', trapStart: null, trapEnd: null, trapHits: 0, jmrP1Sender: 'Abuse reported for: deals@d.slickdeals.net', comments: null });
    expect(row.activityStart).toBe('2026-02-10T16:00:00.000Z');
  });
});

describe('parseDataExport tolerance', () => {
  it('handles a BOM, CRLF, a quoted comment with commas, colour in any case and empty trap fields', () => {
    const { rows, errors } = parseDataExport(fixture('ip-data-bom-crlf.csv'), { timezone: 'UTC' });
    expect(errors).toEqual([]);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ ip: '10.0.0.1', filterResult: 'RED', complaintBand: '>4%', complaintRateLow: 0.04, complaintRateHigh: null, comments: 'Abuse reported for: a@example.net, b@example.net', sampleHelo: 'mail.example.com' });
    expect(rows[1]).toMatchObject({ ip: '10.0.0.2', line: 2, filterResult: 'YELLOW', complaintRateLow: 0.001, complaintRateHigh: 0.01, trapHits: null, trapStartRaw: null });
  });

  it('keeps extra columns raw', () => {
    const { rows } = parseDataExport('10.0.0.3,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,,new-a,new-b\n', { timezone: 'UTC' });
    expect(rows[0]!.extraColumns).toEqual(['new-a', 'new-b']);
  });

  it('takes the day from the activity start in the feed zone', () => {
    const line = '10.0.0.4,1/2/2026 11:30 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,\n';
    const la = parseDataExport(line, { timezone: 'America/Los_Angeles' }).rows[0]!;
    expect(la.day).toBe('2026-01-02');
    expect(la.activityStart).toBe('2026-01-03T07:30:00.000Z');
    expect(parseDataExport(line, { timezone: 'UTC' }).rows[0]!.activityStart).toBe('2026-01-02T23:30:00.000Z');
  });

  it('records bad rows with line number and reason and loads the rest', () => {
    const text = [
      '10.0.0.1,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,',
      '999.0.0.1,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,',
      '',
      '10.0.0.2,13/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,',
      '10.0.0.3,1/2/2026 4:00 PM,1/3/2026 3:00 PM,lots,1,1,GREEN,< 0.1%,,,0,,,',
      '10.0.0.4,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN',
      '10.0.0.5,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,BLUE,< 0.1%,,,0,,,',
    ].join('\n');
    const { rows, errors } = parseDataExport(text, { timezone: 'UTC' });
    expect(rows.map((r) => r.line)).toEqual([1]);
    expect(errors.map((e) => e.line)).toEqual([2, 4, 5, 6, 7]);
    expect(errors[0]!.reason).toMatch(/IP address/);
    expect(errors[1]!.reason).toMatch(/activity start/);
    expect(errors[2]!.reason).toMatch(/RCPT commands/);
    expect(errors[3]!.reason).toMatch(/^7 fields/);
    expect(errors[4]!.reason).toMatch(/filter result/);
    expect(errors[0]!.raw).toBe('999.0.0.1,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,');
  });

  it('skips a header line naming the layout\'s columns, in Microsoft\'s words or a client\'s shorter ones', () => {
    for (const header of [
      'IP Address,Activity start,Activity end,RCPT commands,DATA commands,Message recipients,Filter result,Complaint rate,Trap message period start,Trap message period end,Trap hits,Sample HELO,JMR P1 Sender,Comments',
      '\uFEFFIP Address,Start,End,RCPT,DATA,Recipients,Filter,Complaint,TrapStart,TrapEnd,Traps,HELO,JMR,Comments',
    ]) {
      const { rows, errors, failure } = parseDataExport(`${header}\r\n10.0.0.1,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,\r\n`, { timezone: 'UTC' });
      expect(errors).toEqual([]);
      expect(failure).toBeNull();
      expect(rows[0]!.line).toBe(2);
    }
  });

  it('fails the input on a header whose columns differ from the layout, naming each difference', () => {
    const text =
      'IP Address,Activity start,Activity end,DATA commands,RCPT commands,Message recipients,Filter result,Complaint rate,Trap message start,Trap message end,Trap hits,Sample HELO,JMR P1 Sender,Comments,Region\r\n' +
      '10.1.0.1,2/12/2026 12:00 AM,2/12/2026 11:59 PM,900,1000,880,GREEN,< 0.1%,,,0,,,\r\n';
    const { errors, failure } = parseDataExport(text, { timezone: 'UTC' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 1, failsInput: true });
    expect(failure).toBe(
      'line 1: a header row whose columns differ from the IP Data layout: column 4 is "DATA commands", expected "RCPT commands"; ' +
        'column 5 is "RCPT commands", expected "DATA commands"; column 15 "Region" is not in the layout (14 columns). ' +
        'Microsoft announced column changes: the rows cannot be read by position until the layout is checked; nothing of this input loads',
    );
    // Too few columns named is a difference too; a line 1 that names no columns is an ordinary bad line.
    expect(parseDataExport('IP Address,Activity start,Activity end\n', { timezone: 'UTC' }).failure).toMatch(/3 columns named, the layout has 14/);
    const junk = parseDataExport('name,email\n', { timezone: 'UTC' });
    expect([junk.failure, junk.errors[0]!.reason]).toEqual([null, '2 fields; an IP Data line has 14 (at least 13)']);
  });

  it('fails the input when a date can only be read day first, on any timestamp column', () => {
    const monthFirst = '10.1.0.8,3/2/2026 12:00 AM,3/2/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,';
    for (const dayFirst of [
      '10.1.0.8,13/2/2026 12:00 AM,13/2/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,',
      '10.1.0.9,3/2/2026 12:00 AM,3/2/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,25/2/2026 1:00 PM,,1,,,',
    ]) {
      const { rows, errors, failure } = parseDataExport(`${monthFirst}\n${dayFirst}\n`, { timezone: 'UTC' });
      expect(rows).toHaveLength(1);
      expect(errors[0]).toMatchObject({ line: 2, failsInput: true });
      expect(failure).toMatch(/^line 2: column (2|9) \((activity|trap period) start\): "(13|25)\/2\/2026 [^"]+" can only be read day first \(D\/M\/YYYY\)/);
    }
    // A month above 12 that is no day either (45/2) is one bad line, not a reading in doubt.
    const bad = parseDataExport(`${monthFirst}\n10.1.0.8,45/2/2026 12:00 AM,3/2/2026 11:59 PM,1,1,1,GREEN,< 0.1%,,,0,,,\n`, { timezone: 'UTC' });
    expect([bad.failure, bad.errors[0]!.failsInput]).toEqual([null, undefined]);
  });

  it('rejects a line with no data after its dates, whichever path would take it', () => {
    const line = '10.3.0.34,2/13/2026 12:00 AM,2/13/2026 11:59 PM,,,,,,,,,,,';
    const { rows, errors } = parseDataExport(`${line}\n`, { timezone: 'UTC' });
    expect(rows).toEqual([]);
    expect(errors[0]!.reason).toBe('no data: RCPT commands, DATA commands, message recipients, filter result, complaint rate and trap hits are all empty');
    const fast = [timestampParser('UTC'), timestampParser('UTC'), timestampParser('UTC'), timestampParser('UTC')] as const;
    expect(cleanDataLine(line, fast)).toBeNull();
    // Counts alone, or trap hits alone, are data.
    expect(parseDataExport('10.3.0.35,2/13/2026 12:00 AM,,5,,,,,,,,,,\n10.3.0.36,2/13/2026 12:00 AM,,,,,,,,,3,,,\n', { timezone: 'UTC' }).rows).toHaveLength(2);
  });

  it('reads lines ended by a lone CR (old Mac Excel) as lines', () => {
    const text = ['10.4.1.1', '10.4.1.2', '10.4.1.3'].map((ip) => `${ip},2/13/2026 12:00 AM,2/13/2026 11:59 PM,1000,1000,1000,GREEN,< 0.1%,,,0,,,`).join('\r') + '\r';
    const { rows, errors } = parseDataExport(text, { timezone: 'UTC' });
    expect(errors).toEqual([]);
    expect(rows.map((r) => [r.line, r.ip, r.extraColumns])).toEqual([[1, '10.4.1.1', null], [2, '10.4.1.2', null], [3, '10.4.1.3', null]]);
  });

  it('numbers lines across a quoted field that spans two lines', () => {
    const text = '10.0.0.1,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,"two\nlines"\n10.0.0.2,1/2/2026 4:00 PM,1/3/2026 3:00 PM,1,1,1,GREEN,< 0.1%,,,0,,,\n';
    const { rows } = parseDataExport(text, { timezone: 'UTC' });
    expect(rows.map((r) => [r.line, r.comments])).toEqual([[1, 'two\nlines'], [3, null]]);
  });
});

describe('complaint bands', () => {
  it.each([
    ['< 0.1%', 0, 0.001],
    ['<0.1%', 0, 0.001],
    ['0.1% - < 1%', 0.001, 0.01],
    ['1% - < 2%', 0.01, 0.02],
    ['>4%', 0.04, null],
    ['0.4%', 0.004, 0.004],
  ])('%s → %s … %s', (band, low, high) => {
    expect(complaintBandBounds(band)).toEqual({ low, high });
  });
  it('refuses text that is no band', () => {
    expect(complaintBandBounds('high')).toBeNull();
  });
});

describe('timestamps', () => {
  it('reads 12 AM and 12 PM correctly and refuses impossible dates', () => {
    expect(parseSndsTimestamp('1/1/2026 12:05 AM', 'UTC')!.iso).toBe('2026-01-01T00:05:00.000Z');
    expect(parseSndsTimestamp('1/1/2026 12:05 PM', 'UTC')!.iso).toBe('2026-01-01T12:05:00.000Z');
    expect(parseSndsTimestamp('2/30/2026 1:00 PM', 'UTC')).toBeNull();
    expect(parseSndsTimestamp('2026-01-01 10:00', 'UTC')).toBeNull();
  });
  it('applies daylight saving time of the feed zone', () => {
    expect(parseSndsTimestamp('7/1/2026 9:00 AM', 'America/Los_Angeles')!.iso).toBe('2026-07-01T16:00:00.000Z');
    expect(parseSndsTimestamp('1/1/2026 9:00 AM', 'America/Los_Angeles')!.iso).toBe('2026-01-01T17:00:00.000Z');
  });
});

describe('isMostlyBad', () => {
  it('is true only above half', () => {
    expect(isMostlyBad(1, 1)).toBe(false);
    expect(isMostlyBad(1, 2)).toBe(true);
    expect(isMostlyBad(0, 0)).toBe(false);
  });
});

describe('property: the parser never throws and accounts for every line', () => {
  const goodLine = fc
    .record({
      a: fc.integer({ min: 0, max: 255 }),
      b: fc.integer({ min: 0, max: 255 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 28 }),
      hour: fc.integer({ min: 1, max: 12 }),
      n: fc.nat(10_000_000),
      colour: fc.constantFrom('GREEN', 'yellow', 'Red', ''),
      band: fc.constantFrom('< 0.1%', '0.1% - < 1%', '>4%', ''),
      comment: fc.constantFrom('', 'plain', '"quoted, with comma"', '"say ""hi"""'),
      short: fc.boolean(),
    })
    .map((r) => `10.${r.a}.${r.b}.1,${r.month}/${r.day}/2026 ${r.hour}:00 PM,${r.month}/${r.day}/2026 ${r.hour}:30 PM,${r.n},${r.n},${r.n},${r.colour},${r.band},,,0,,${r.short ? '' : ','}${r.comment}`);
  const mutate = (line: string, position: number, insert: string) => line.slice(0, position % (line.length + 1)) + insert + line.slice(position % (line.length + 1));
  const anyLine = fc.oneof(
    goodLine,
    fc.tuple(goodLine, fc.nat(), fc.constantFrom(',', '"', 'x', '\r', ' ', '\u0000', '%')).map(([l, p, c]) => mutate(l, p, c)),
    fc.string({ maxLength: 80 }).filter((s) => !s.includes('\n')),
  );

  it('every non-empty line becomes a row or a row error (no quotes spanning lines)', () => {
    fc.assert(
      fc.property(fc.array(anyLine.filter((l) => !l.includes('"')), { maxLength: 30 }), fc.constantFrom('\n', '\r\n'), (lines, eol) => {
        const text = lines.join(eol);
        // Text with CRs and no LF at all has its lines ended by CR (tested on its own below).
        fc.pre(!(text.includes('\r') && !text.includes('\n')));
        const { rows, errors } = parseDataExport(text, { timezone: 'America/New_York' });
        const lineNumbers = [...rows.map((r) => r.line), ...errors.map((e) => e.line)].sort((a, b) => a - b);
        // A header line is skipped only when it names the layout's columns (random text never does).
        const expected = lines.flatMap((l, i) => (l.replace(/\r$/, '').trim() === '' ? [] : [i + 1]));
        expect(lineNumbers).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('every non-empty line becomes a row or a row error when each line closes its own quotes', () => {
    const balanced = (l: string) => (l.match(/"/g)?.length ?? 0) % 2 === 0;
    fc.assert(
      fc.property(fc.array(anyLine.filter(balanced), { maxLength: 30 }), fc.constantFrom('\n', '\r\n'), (lines, eol) => {
        fc.pre(!(lines.join(eol).includes('\r') && !lines.join(eol).includes('\n')));
        const { rows, errors } = parseDataExport(lines.join(eol), { timezone: 'UTC' });
        const lineNumbers = [...rows.map((r) => r.line), ...errors.map((e) => e.line)].sort((a, b) => a - b);
        // A header line is skipped only when it names the layout's columns (random text never does).
        const expected = lines.flatMap((l, i) => (l.replace(/\r$/, '').trim() === '' ? [] : [i + 1]));
        expect(lineNumbers).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on anything, quotes included, and never reports a line twice', () => {
    fc.assert(
      fc.property(fc.array(anyLine, { maxLength: 30 }), (lines) => {
        const text = lines.join('\n');
        const { rows, errors } = parseDataExport(text, { timezone: 'UTC' });
        const seen = [...rows.map((r) => r.line), ...errors.map((e) => e.line)];
        expect(new Set(seen).size).toBe(seen.length);
        for (const line of seen) expect(line).toBeGreaterThanOrEqual(1);
        // Without any LF, each CR ends a line.
        const physicalLines = text.includes('\n') || !text.includes('\r') ? lines.length : text.split('\r').length;
        expect(rows.length + errors.length).toBeLessThanOrEqual(physicalLines);
      }),
      { numRuns: 300 },
    );
  });

  it("the loader's fast path agrees with the full parser: a line it takes is a valid row, stored as parsed", () => {
    const fast = [timestampParser('Europe/Berlin'), timestampParser('Europe/Berlin'), timestampParser('Europe/Berlin'), timestampParser('Europe/Berlin')] as const;
    let taken = 0;
    fc.assert(
      fc.property(anyLine, fc.constantFrom('', ' ', 'x', ',', '1', 'AM', '/'), fc.nat(), (base, insert, at) => {
        // Half the cases in SNDS's exact shape (upper-case colour, nothing quoted), then mutated.
        const exact = base.replace(/\b(yellow|Red)\b/g, (c) => c.toUpperCase());
        const line = insert ? mutate(exact, at, insert) : exact;
        if (line.includes('\n') || line.includes('\r')) return;
        const clean = cleanDataLine(line, fast);
        if (!clean) return;
        taken++;
        const { rows, errors } = parseDataExport(line, { timezone: 'Europe/Berlin' });
        expect(errors).toEqual([]);
        const row = rows[0]!;
        expect(clean).toEqual({ day: row.day, start: row.activityStart, complaintBand: row.complaintBand, short: Papa.parse<string[]>(line, { delimiter: ',', newline: '\n' }).data[0]!.length === 13 });
        // How COPY reads the line as it stands (RFC 4180, as papaparse does).
        const fields = Papa.parse<string[]>(line, { delimiter: ',', newline: '\n' }).data[0]!;
        expect(fields[0]).toBe(row.ip);
        expect(fields[6]).toBe(row.filterResult ?? '');
        expect([fields[1], fields[2], fields[7], fields[8], fields[9], fields[11], fields[12], fields[13] ?? '']).toEqual(
          [row.activityStartRaw, row.activityEndRaw, row.complaintBand, row.trapStartRaw, row.trapEndRaw, row.sampleHelo, row.jmrP1Sender, row.comments].map((v) => v ?? ''),
        );
        expect([fields[3], fields[4], fields[5], fields[10]].map((v) => (v === '' ? null : Number(v)))).toEqual([row.rcptCommands, row.dataCommands, row.messageRecipients, row.trapHits]);
      }),
      // A fixed seed: the count of lines the fast path takes is then a fact of this input, not luck.
      { numRuns: 1000, seed: 20261128 },
    );
    expect(taken).toBeGreaterThan(50);
  });

  it('splits quote-free text the way papaparse does', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }).filter((s) => !/["\n\r]/.test(s)), { maxLength: 10 }), (lines) => {
        const seen: string[][] = [];
        forEachCsvRecord(lines.join('\n'), 1, (r) => seen.push(r.fields));
        const expected = lines.filter((l) => l.trim() !== '').map((l) => l.split(','));
        expect(seen).toEqual(expected);
      }),
    );
  });
});
