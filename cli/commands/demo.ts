import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { runDemo } from '../../demo/run-demo.js';
import { demoSteps } from '../../demo/steps.js';

export function registerDemo(program: Command, run: CommandRunner): void {
  program
    .command('demo')
    .description('run the pipeline on the embedded database with the bundled sample data (what `npm start` does)')
    .action(() => {
      // The sample needs no configuration; ./repwatch.yaml is the real setup (`cp repwatch.example.yaml
      // repwatch.yaml` is the first step of docker-compose.yml), whose ${ENV} secrets are not set here.
      program.setOptionValue('localConfig', false);
      return run((ctx) => {
        if (ctx.unreadConfigPath) ctx.logger.info({ file: ctx.unreadConfigPath }, 'the demo does not read ./repwatch.yaml (give --config to use it): it runs with the built-in defaults');
        // Sample data is fake: it must never land in a production database that DATABASE_URL names.
        if (ctx.useEmbeddedDatabase()) ctx.logger.warn({ home: ctx.home }, 'the demo runs on the embedded database only: DATABASE_URL / database.url is not used');
        return runDemo(ctx, demoSteps());
      });
    });
}
