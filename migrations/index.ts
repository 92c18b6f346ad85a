import type { Migration } from './migration.js';
import { migration as core } from './0001-core.js';
import { migration as snds } from './0002-snds.js';
import { migration as jmrp } from './0003-jmrp.js';
import { migration as ipDayAndFlags } from './0004-ip-day-and-flags.js';
import { migration as delisting } from './0005-delisting.js';
import { migration as scheduling } from './0006-scheduling.js';
import { migration as sndsStorage } from './0007-snds-storage.js';
import { migration as recomputePending } from './0008-recompute-pending.js';
import { migration as mailStorage } from './0009-mail-storage.js';
import { migration as decisionThresholds } from './0010-decision-thresholds.js';
import { migration as bodyKey } from './0011-body-key.js';
import { migration as reportKey } from './0012-report-key.js';
import { migration as reportContentKey } from './0013-report-content-key.js';
import { migration as decisionRulesVersion } from './0014-decision-rules-version.js';
import { migration as recomputeOldDecisions } from './0015-recompute-old-decisions.js';
import { migration as decisionBasis } from './0016-decision-basis.js';
import { migration as storedRatePrecision } from './0017-stored-rate-precision.js';
import { migration as poolRateAndDecisionCoverage } from './0018-pool-rate-and-decision-coverage.js';
import { migration as sndsRowsLost } from './0019-snds-rows-lost.js';

export type { Migration };

/** Every migration, in order. A new one gets the next number and a line here. */
export const migrations: readonly Migration[] = [core, snds, jmrp, ipDayAndFlags, delisting, scheduling, sndsStorage, recomputePending, mailStorage, decisionThresholds, bodyKey, reportKey, reportContentKey, decisionRulesVersion, recomputeOldDecisions, decisionBasis, storedRatePrecision, poolRateAndDecisionCoverage, sndsRowsLost];
