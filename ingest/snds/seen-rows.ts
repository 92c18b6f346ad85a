/**
 * The (IP, activity start) pairs of one IP Data download, and the line each was first seen on. SNDS
 * gives one line per IP and activity period; a second line with the same pair (overlapping exports
 * joined into one file for a backfill, a line pasted twice) would count that traffic twice, so the
 * loader rejects it with the first line's number.
 *
 * Keys are held as 64-bit hashes (two 32-bit FNV-1a variants) in an open-addressing table of typed
 * arrays: 12 bytes a slot, 24 MB for a million-row export, where a Set of key strings held about 80
 * bytes a row and kept the export's text alive through V8's sliced strings. Two different pairs share
 * a 64-bit hash with a chance of about 1 in 10^7 in a million-row export; such a line would be rejected
 * with its bytes kept in repwatch.rejection, never silently lost.
 */
export class SeenRows {
  private low = new Uint32Array(1 << 12);
  private high = new Uint32Array(1 << 12);
  /** 0: empty slot (line numbers start at 1). */
  private lines = new Int32Array(1 << 12);
  private used = 0;

  /** The line the key (`text` up to `end`) was first seen on, or null when this is its first line (then
   * it is remembered). Hashing up to `end` lets a whole CSV line be passed without slicing it. */
  firstLine(text: string, end: number, line: number): number | null {
    return this.firstLineOf(text, end, '', line);
  }

  /**
   * The same for the key `text` up to `end`, a comma, then `suffix` (hashed in place, no string made):
   * the loader's key is the IP as the line has it and the activity start as an instant, so that
   * "2/13/2026 12:00 AM", "02/13/2026 12:00 AM" and "2/13/2026 0:00" are one key.
   */
  firstLineOf(text: string, end: number, suffix: string, line: number): number | null {
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ 0x5bd1e995;
    for (let i = 0; i < end; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    if (suffix !== '') {
      a = Math.imul(a ^ 44, 0x01000193);
      b = Math.imul(b ^ 44, 0x5bd1e995);
      b ^= b >>> 15;
      for (let i = 0; i < suffix.length; i++) {
        const c = suffix.charCodeAt(i);
        a = Math.imul(a ^ c, 0x01000193);
        b = Math.imul(b ^ c, 0x5bd1e995);
        b ^= b >>> 15;
      }
    }
    a >>>= 0;
    b >>>= 0;
    const mask = this.lines.length - 1;
    for (let slot = (a ^ Math.imul(b, 0x9e3779b1)) & mask; ; slot = (slot + 1) & mask) {
      const seen = this.lines[slot]!;
      if (seen === 0) {
        this.low[slot] = a;
        this.high[slot] = b;
        this.lines[slot] = line;
        if (++this.used * 2 > this.lines.length) this.grow();
        return null;
      }
      if (this.low[slot] === a && this.high[slot] === b) return seen;
    }
  }

  private grow(): void {
    const { low, high, lines } = this;
    this.low = new Uint32Array(lines.length * 2);
    this.high = new Uint32Array(lines.length * 2);
    this.lines = new Int32Array(lines.length * 2);
    const mask = this.lines.length - 1;
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] === 0) continue;
      let slot = (low[i]! ^ Math.imul(high[i]!, 0x9e3779b1)) & mask;
      while (this.lines[slot] !== 0) slot = (slot + 1) & mask;
      this.low[slot] = low[i]!;
      this.high[slot] = high[i]!;
      this.lines[slot] = lines[i]!;
    }
  }
}
