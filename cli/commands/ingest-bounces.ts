import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { CliError } from '../exit-codes.js';

/** Placeholder until bounce ingestion lands. */
export function registerIngestBounces(ingest: Command, run: CommandRunner): void {
  ingest
    .command('bounces')
    .description('load bounce data (not available yet)')
    .action(() =>
      run(async () => {
        throw new CliError('bounce ingestion is not available yet');
      }),
    );
}
