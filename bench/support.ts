/** What every benchmark needs: its options, its output lines, and a PostgreSQL database of its own. */
import pg from 'pg';

export const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The value after `--name` in the arguments, if any. */
export function option(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at === -1 ? undefined : args[at + 1];
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Milliseconds as seconds, for output lines. */
export function sec(ms: number, digits = 1): string {
  return `${(ms / 1000).toFixed(digits)} s`;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export interface BenchDatabase {
  /** postgres:// URL of the new database. */
  url: string;
  /** Drop it (with force: a killed child may still hold a connection). */
  drop(): Promise<void>;
}

/** A fresh database on the server of DATABASE_URL (or the local default) for one benchmark run. */
export async function createBenchDatabase(label: string): Promise<BenchDatabase> {
  const serverUrl = process.env.DATABASE_URL || DEFAULT_SERVER_URL;
  const name = `repwatch_bench_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const cleanup = new pg.Client({ connectionString: serverUrl });
      await cleanup.connect();
      try {
        await cleanup.query(`drop database if exists ${name} with (force)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}
