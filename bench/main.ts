/**
 * `npm run bench -- <name> [args]`: performance targets live here, never in timed tests. Each benchmark
 * prints what it measured and the machine it ran on.
 */
import { cpus, totalmem } from 'node:os';

const benchmarks: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  snds: () => import('./snds.js'),
  decisions: () => import('./decisions.js'),
  report: () => import('./report.js'),
  jmrp: () => import('./jmrp.js'),
  imap: () => import('./imap.js'),
  hostile: () => import('./hostile.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? benchmarks[name] : undefined;
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benchmarks).join('|') || 'name'}> [options]\n`);
  process.exit(2);
}
process.stdout.write(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}\n`);
await (await load()).run(args);
