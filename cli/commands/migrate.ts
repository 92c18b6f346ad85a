import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import { schemaVersion } from '../../db/migrate.js';

export function registerMigrate(program: Command, run: CommandRunner): void {
  program
    .command('migrate')
    .description('bring the database schema to the latest migration, and do nothing else')
    .action(() =>
      run(async (ctx) => {
        const database = await ctx.database();
        const version = await schemaVersion(database);
        ctx.stdout.write(`schema at migration ${version} on ${database.description}\n`);
        for (const warning of ctx.migration?.warnings ?? []) ctx.stdout.write(`warning: ${warning}\n`);
      }),
    );
}
