import type { DemoStep } from './run-demo.js';
import { schemaVersion } from '../db/migrate.js';

/** The demo's steps in pipeline order. */
export function demoSteps(): DemoStep[] {
  return [
    {
      name: 'database',
      run: async (ctx) => `schema at migration ${await schemaVersion(await ctx.database())}`,
    },
  ];
}
