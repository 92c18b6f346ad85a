import { Command, CommanderError, Option } from 'commander';
import { createContext, type CommandContext, type ContextOverrides, type GlobalOptions } from './context.js';
import { CliError, ExitCode } from './exit-codes.js';
import type { CommandRunner } from './command-runner.js';
import { redactError, redact } from '../lib/redact.js';
import { registerMigrate } from './commands/migrate.js';
import { registerDemo } from './commands/demo.js';
import { registerIngest } from './commands/ingest.js';
import { registerSnds } from './commands/snds.js';
import { registerFlags } from './commands/flags.js';
import { registerTransform } from './commands/transform.js';
import { registerRun } from './commands/run.js';
import { registerSchedule } from './commands/schedule.js';
import { registerStatus } from './commands/status.js';
import { registerReport } from './commands/report.js';
import { registerExport } from './commands/export.js';
import { registerDelist } from './commands/delist.js';
import { registerCheck } from './commands/check.js';

export const VERSION = '0.1.0';

/**
 * The CLI edge: parse arguments, build the context, run one verb, turn its result or error into an
 * exit code. In-process so tests can call it with their own env, clock and streams.
 */
export async function runCli(argv: readonly string[], overrides: ContextOverrides = {}): Promise<number> {
  const stderr = overrides.stderr ?? process.stderr;
  const stdout = overrides.stdout ?? process.stdout;
  let exitCode: number = ExitCode.ok;
  let ctx: CommandContext | undefined;

  const program = new Command('repwatch')
    .description('Microsoft SNDS and JMRP reputation data in PostgreSQL, with a delisting decision for every sending IP')
    .version(VERSION)
    .addOption(new Option('-c, --config <file>', 'configuration file (default: $REPWATCH_CONFIG, then ./repwatch.yaml)'))
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']))
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .exitOverride();

  const run: CommandRunner = async (body) => {
    ctx = createContext(program.opts<GlobalOptions>(), overrides);
    const result = await body(ctx);
    if (typeof result === 'number') exitCode = result;
  };

  registerMigrate(program, run);
  registerDemo(program, run);
  registerIngest(program, run);
  registerSnds(program, run);
  registerFlags(program, run);
  registerTransform(program, run);
  registerRun(program, run);
  registerSchedule(program, run);
  registerStatus(program, run);
  registerReport(program, run);
  registerExport(program, run);
  registerDelist(program, run);
  registerCheck(program, run);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    exitCode = reportError(error, stderr, ctx);
  } finally {
    await ctx?.close().catch(() => undefined);
  }
  return exitCode;
}

function reportError(error: unknown, stderr: NodeJS.WritableStream, ctx: CommandContext | undefined): number {
  if (error instanceof CommanderError) {
    // --help and --version end here too, with code 0.
    if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
    return ExitCode.usage;
  }
  if (error instanceof CliError) {
    stderr.write(`repwatch: ${redact(error.message)}\n`);
    return error.exitCode;
  }
  if (ctx) ctx.logger.error({ err: error }, 'command failed');
  stderr.write(`repwatch: ${redactError(error)}\n`);
  return ExitCode.failed;
}
