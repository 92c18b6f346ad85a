/**
 * A rate (0.0012) as a percentage with `digits` decimals ("0.120"), cut rather than rounded: a rate just
 * under a threshold (20 complaints in 20,010 recipients, 0.09995%) must not read as the threshold itself
 * ("0.100%") next to a status that says it is under it. The nudge keeps a rate that is exactly at a
 * threshold (0.003, stored as 0.0029999…) from being cut below it.
 */
export function percentDigits(rate: number, digits = 3): string {
  const scale = 10 ** (digits + 2);
  return (Math.floor(rate * scale + 1e-6) / 10 ** digits).toFixed(digits);
}
