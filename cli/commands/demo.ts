import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { runDemo } from '../../demo/run-demo.js';
import { demoSteps } from '../../demo/steps.js';

export function registerDemo(program: Command, run: CommandRunner): void {
  program
    .command('demo')
    .description('run the pipeline on the embedded database with the bundled sample data (what `npm start` does)')
    .action(() => run((ctx) => runDemo(ctx, demoSteps())));
}
