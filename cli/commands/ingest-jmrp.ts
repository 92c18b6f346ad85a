import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { CliError } from '../exit-codes.js';

/** Placeholder until JMRP ingestion lands. */
export function registerIngestJmrp(ingest: Command, run: CommandRunner): void {
  ingest
    .command('jmrp')
    .description('load JMRP data (not available yet)')
    .action(() =>
      run(async () => {
        throw new CliError('JMRP ingestion is not available yet');
      }),
    );
}
