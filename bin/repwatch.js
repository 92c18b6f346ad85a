#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm ci builds it through the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('repwatch: the compiled code is missing (dist/). Run `npm run build` (npm ci does it too).\n');
  process.exit(1);
}
// Ctrl-C or a kill during a one-off command: say what it means before going. `run` and `schedule`
// install handlers of their own that stop their jobs first (marked, see lib/signals.ts); this one then
// stands aside.
const stopsItself = Symbol.for('repwatch.stopsItself');
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => {
    if (process.listeners(signal).some((listener) => listener[stopsItself])) return;
    process.stderr.write(
      `\nrepwatch: interrupted (${signal}). The database rolls back the transaction in progress; what was committed before stays, ` +
        'and running the same command again recognises it (nothing is counted twice).\n',
    );
    process.exit(code);
  });
}
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
