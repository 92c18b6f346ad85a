/**
 * bin/repwatch.js answers SIGINT and SIGTERM for one-off commands (it says what an interruption means,
 * then exits). `run` and `schedule` stop their jobs first: their handlers carry this mark, and while one
 * is installed the entry point's handler stands aside. Other libraries' listeners (signal-exit, through
 * proper-lockfile) do not count, so a second Ctrl-C after `run` has removed its handler still ends the
 * process.
 */
export const STOPS_ITSELF = Symbol.for('repwatch.stopsItself');

export function stopsItself<F extends (...args: never[]) => unknown>(handler: F): F {
  return Object.assign(handler, { [STOPS_ITSELF]: true });
}
