/**
 * Word-wrap text for a terminal of `width` columns: the first line begins with `first`, the others
 * with `rest` (indents, or a label such as `note:`). A word longer than a line gets a line of its own.
 */
export function wrapWords(text: string, width: number, first = '', rest = ''): string {
  const lines: string[] = [];
  let line = first;
  for (const word of text.split(' ')) {
    if (line.trim().length > 0 && line.length + word.length + 1 > width) {
      lines.push(line.trimEnd());
      line = rest;
    }
    line += line.trim().length > 0 ? ` ${word}` : word;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}
