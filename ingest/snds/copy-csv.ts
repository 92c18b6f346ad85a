/** Writing values as PostgreSQL COPY CSV: unquoted empty is NULL, anything risky is quoted. */

const NEEDS_QUOTES = /[",\r\n\\]/;

export function csvText(value: string | null): string {
  if (value === null) return '';
  if (value === '' || NEEDS_QUOTES.test(value) || value.trim() !== value) return `"${value.replace(/"/g, '""')}"`;
  return value;
}

export function csvNumber(value: number | null): string {
  return value === null ? '' : String(value);
}

/** A text[] literal ({"a","b"}) as one CSV cell. */
export function csvTextArray(values: readonly string[] | null): string {
  if (values === null) return '';
  const literal = `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
  return csvText(literal);
}
