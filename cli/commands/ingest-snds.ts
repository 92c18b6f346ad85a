import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { CliError } from '../exit-codes.js';

/** Placeholder until SNDS ingestion lands. */
export function registerIngestSnds(ingest: Command, run: CommandRunner): void {
  ingest
    .command('snds')
    .description('load SNDS data (not available yet)')
    .action(() =>
      run(async () => {
        throw new CliError('SNDS ingestion is not available yet');
      }),
    );
}
