import type { CoreTables } from './core.js';
import type { SndsTables } from './snds.js';
import type { JmrpTables } from './jmrp.js';
import type { AnalyticsTables } from './analytics.js';
import type { JobsTables } from './jobs.js';
import type { DelistingTables } from './delisting.js';

/** The whole database as Kysely sees it; each area declares its own tables beside its migration. */
export interface Schema extends CoreTables, SndsTables, JmrpTables, AnalyticsTables, JobsTables, DelistingTables {}
