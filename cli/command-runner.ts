import type { CommandContext } from './context.js';

/** Runs a command's body with the context and records its exit code; errors are turned into exit
 * codes in one place (cli/main.ts). */
export type CommandRunner = (body: (ctx: CommandContext) => Promise<number | void>) => Promise<void>;
