/**
 * `npm run bench -- jmrp [--count N] [--baseline-sample N] [--runs N]`: N (default 20,000) complaint
 * reports of the three JMRP shapes (ARF, 2026 JMRP ARF, legacy) in an mbox, ingested into PostgreSQL
 * through the real path (mbox source -> drain loop -> parser -> mail_message + feedback_report ->
 * recompute). Against mailparser's simpleParser parsing the same messages one by one (a sample of them,
 * default 2,000, with its default options and with text/html conversion off). Targets: at least 10x
 * simpleParser end to end, peak RSS under 300 MB. The ingest runs in a child process so its peak RSS is
 * its own.
 *
 * The machine is shared and its speed drifts by a fifth or more from one minute to the next, so each run
 * pairs an ingest into a new database with a baseline measured right after it, and the median of the
 * paired ratios is reported (default 3 runs).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import { configSchema } from '../config/schema.js';
import { openDatabase } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { ingestJmrpMailbox } from '../ingest/jmrp/ingest-mailbox.js';
import { parseReport } from '../ingest/jmrp/parse-report.js';
import { mboxSource } from '../ingest/mailbox/mbox-source.js';
import { generateReports, mboxEntry } from './generate-reports.js';
import { createBenchDatabase, median, option, out, sec } from './support.js';

export async function run(args: string[]): Promise<void> {
  if (args[0] === '--child') return child(args[1]!, args[2]!);
  const count = Number(option(args, '--count') ?? 20_000);
  const sample = Number(option(args, '--baseline-sample') ?? 2_000);
  const runs = Math.max(1, Number(option(args, '--runs') ?? 3));
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-bench-jmrp-'));
  const mbox = join(dir, 'complaints.mbox');
  try {
    const t0 = performance.now();
    await writeMbox(mbox, count);
    const size = statSync(mbox).size;
    out(`generated ${count.toLocaleString('en')} reports (ARF, 2026 JMRP ARF, legacy JMRP; ${(size / count / 1024).toFixed(1)} KB each, ${(size / 2 ** 20).toFixed(0)} MiB mbox) in ${sec(performance.now() - t0)}`);
    const messages = await sampleMessages(mbox, sample);

    const ratios: number[] = [];
    const leanRatios: number[] = [];
    let peakRssMb = 0;
    for (let i = 1; i <= runs; i++) {
      const database = await createBenchDatabase('jmrp');
      try {
        const migrated = await openDatabase({ url: database.url });
        await migrate(migrated);
        await migrated.close();
        const ingest = await runChild(mbox, database.url);
        const rate = count / ingest.seconds;
        const baseline = await simpleParserRate(messages, false);
        const lean = await simpleParserRate(messages, true);
        ratios.push(rate / baseline);
        leanRatios.push(rate / lean);
        peakRssMb = Math.max(peakRssMb, ingest.peakRssMb);
        out(`run ${i}: ingest (mbox -> parse -> mail_message + feedback_report -> recompute) ${sec(ingest.seconds * 1000)}, ${fmt(rate)} reports/s, peak RSS ${ingest.peakRssMb.toFixed(0)} MB; stored ${ingest.stored}, complaints ${ingest.complaints}, quarantined ${ingest.quarantined}`);
        out(`  parse alone (lean MIME walk) ${fmt(ingest.parseRate)} reports/s; simpleParser one by one (${messages.length.toLocaleString('en')}-report sample) ${fmt(baseline)} reports/s default, ${fmt(lean)} with text/html conversion off`);
        out(`  ratio ${(rate / baseline).toFixed(1)}x (default options), ${(rate / lean).toFixed(1)}x (conversion off)`);
      } finally {
        await database.drop();
      }
    }
    const ratio = median(ratios);
    out(`ratio end-to-end ingest / simpleParser, median of ${runs} paired runs: ${ratio.toFixed(1)}x (default options; runs ${ratios.map((r) => r.toFixed(1)).join(', ')}), ${median(leanRatios).toFixed(1)}x (conversion off)  target >= 10x: ${ratio >= 10 ? 'MET' : 'NOT MET'}`);
    out(`peak RSS ${peakRssMb.toFixed(0)} MB  target < 300 MB: ${peakRssMb < 300 ? 'MET' : 'NOT MET'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function writeMbox(path: string, count: number): Promise<void> {
  const stream = createWriteStream(path);
  for (const { eml } of generateReports({ count, seed: 2026 })) {
    if (!stream.write(mboxEntry(eml))) await new Promise<void>((r) => stream.once('drain', () => r()));
  }
  await new Promise<void>((r) => stream.end(() => r()));
}

interface ChildResult {
  seconds: number;
  peakRssMb: number;
  stored: number;
  complaints: number;
  quarantined: number;
  parseRate: number;
}

function runChild(mbox: string, url: string): Promise<ChildResult> {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [main, 'jmrp', '--child', mbox, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.once('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`benchmark child failed (${code}): ${stdout}`));
      else resolve(JSON.parse(line) as ChildResult);
    });
  });
}

async function child(mbox: string, url: string): Promise<void> {
  const database = await openDatabase({ url });
  const config = configSchema.parse({ jmrp: { recipientSalt: 'bench-salt-0123456789' } });
  const t0 = performance.now();
  const result = await ingestJmrpMailbox({ database, config, mailbox: mboxSource({ path: mbox }), batchSize: 500 });
  const seconds = (performance.now() - t0) / 1000;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  // The parser alone over the same file (messages read in batches, not all at once).
  let parsed = 0;
  let parseMs = 0;
  for await (const batch of mboxSource({ path: mbox }).batches({ batchSize: 1000, maxMessageBytes: 10 << 20 })) {
    const s = performance.now();
    for (const m of batch) if (parseReport(m.raw!).kind !== 'not_a_report') parsed += 1;
    parseMs += performance.now() - s;
  }
  await database.close();
  if (result.error) throw new Error(result.error);
  process.stdout.write(
    `${JSON.stringify({ seconds, peakRssMb, stored: result.stored, complaints: result.complaints, quarantined: result.quarantined, parseRate: parsed / (parseMs / 1000) } satisfies ChildResult)}\n`,
  );
}

/** The first `sample` messages of the mbox, as the splitter reads them. */
async function sampleMessages(mbox: string, sample: number): Promise<Buffer[]> {
  const messages: Buffer[] = [];
  for await (const batch of mboxSource({ path: mbox }).batches({ batchSize: 1000, maxMessageBytes: 10 << 20 })) {
    for (const m of batch) if (messages.length < sample) messages.push(m.raw!);
    if (messages.length >= sample) break;
  }
  return messages;
}

async function simpleParserRate(messages: readonly Buffer[], conversionOff: boolean): Promise<number> {
  const options = conversionOff ? { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true } : {};
  // Warmed up first (its modules' lazy set-up, the JIT): the baseline is simpleParser at its best.
  for (const raw of messages.slice(0, 200)) await simpleParser(raw, options);
  const t0 = performance.now();
  for (const raw of messages) await simpleParser(raw, options);
  return messages.length / ((performance.now() - t0) / 1000);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en');
}
