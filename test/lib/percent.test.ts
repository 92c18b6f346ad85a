import { describe, expect, it } from 'vitest';
import { percentDigits } from '../../lib/percent.js';

describe('percentDigits', () => {
  it('cuts instead of rounding, so a rate under a threshold never reads as the threshold', () => {
    expect(percentDigits(20 / 20_010)).toBe('0.099');
    expect(percentDigits(60 / 20_010)).toBe('0.299');
  });

  it('keeps a rate exactly at a threshold at the threshold, whatever the floating point', () => {
    expect(percentDigits(0.001)).toBe('0.100');
    expect(percentDigits(0.003)).toBe('0.300');
    expect(percentDigits(3 / 1000)).toBe('0.300');
    expect(percentDigits(7 / 7000)).toBe('0.100');
    expect(percentDigits(0)).toBe('0.000');
    expect(percentDigits(1.36)).toBe('136.000');
    expect(percentDigits(0.5, 1)).toBe('50.0');
  });
});
