import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { registerIngestSnds } from './ingest-snds.js';
import { registerIngestJmrp } from './ingest-jmrp.js';
import { registerIngestBounces } from './ingest-bounces.js';

/** `repwatch ingest <source>`: one subcommand per source, each in its own file. */
export function registerIngest(program: Command, run: CommandRunner): void {
  const ingest = program.command('ingest').description('load data from a source into the warehouse');
  registerIngestSnds(ingest, run);
  registerIngestJmrp(ingest, run);
  registerIngestBounces(ingest, run);
}
