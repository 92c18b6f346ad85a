import type { CommandContext } from '../cli/context.js';

export interface DemoStep {
  name: string;
  run(ctx: CommandContext): Promise<string>;
}

/**
 * `npm start`: the pipeline on the embedded database with the bundled sample. Each stage of the
 * pipeline adds its step here; every step prints one line of what it did.
 */
export async function runDemo(ctx: CommandContext, steps: DemoStep[]): Promise<void> {
  const started = Date.now();
  const database = await ctx.database();
  ctx.stdout.write(`repwatch demo on ${database.description}\n`);
  for (const step of steps) {
    const t0 = Date.now();
    const summary = await step.run(ctx);
    ctx.stdout.write(`\n== ${step.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${summary.trimEnd()}\n`);
  }
  ctx.stdout.write(`\ndemo finished in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
