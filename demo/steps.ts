import type { DemoStep } from './run-demo.js';
import { sndsStep } from './steps/snds.js';
import { jmrpStep } from './steps/jmrp.js';
import { bouncesStep } from './steps/bounces.js';
import { decisionsStep } from './steps/decisions.js';
import { operationsStep } from './steps/operations.js';
import { reportStep } from './steps/report.js';

/** The demo's steps in pipeline order: load, decide, run as jobs, report (the report's path comes last). */
export function demoSteps(): DemoStep[] {
  return [sndsStep, jmrpStep, bouncesStep, decisionsStep, operationsStep, reportStep];
}
