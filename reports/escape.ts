/**
 * The one HTML escaping function of the report. Complaint reports, mail headers and feed contents are
 * hostile input: every value that came from outside goes through here before it touches HTML, whether it
 * lands in an element, an attribute or an SVG <text>. Escaping the five characters that matter in both
 * contexts (and always quoting attributes) is what makes a payload show as text.
 */
export function escapeHtml(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = value instanceof Date ? value.toISOString() : String(value);
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
