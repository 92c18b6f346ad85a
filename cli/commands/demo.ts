import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { runDemo } from '../../demo/run-demo.js';
import { demoSteps } from '../../demo/steps.js';

export function registerDemo(program: Command, run: CommandRunner): void {
  program
    .command('demo')
    .description('run the pipeline on the embedded database with the bundled sample data (what `npm start` does)')
    .action(() =>
      run((ctx) => {
        // Sample data is fake: it must never land in a production database that DATABASE_URL names.
        if (ctx.useEmbeddedDatabase()) ctx.logger.warn({ home: ctx.home }, 'the demo runs on the embedded database only: DATABASE_URL / database.url is not used');
        return runDemo(ctx, demoSteps());
      }),
    );
}
