import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../db/connection.js';
import { migrate } from '../../db/migrate.js';
import { dovecotAvailable } from '../../bench/local-dovecot.js';

/**
 * Once per test run: a migrated PGlite snapshot that every test file starts from (a new PGlite takes
 * seconds; loading a snapshot about one), and the PostgreSQL server to use — DATABASE_URL, else a
 * testcontainers PostgreSQL where Docker answers, else none, said loudly.
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-test-'));
  const snapshot = join(dir, 'pglite-migrated.tar');
  const pglite = await openDatabase({ memory: true });
  await migrate(pglite);
  const blob = await pglite.dumpDataDir!();
  writeFileSync(snapshot, Buffer.from(await blob.arrayBuffer()));
  await pglite.close();
  project.provide('pgliteSnapshot', snapshot);

  let postgresUrl = process.env.DATABASE_URL ?? '';
  let stopContainer: (() => Promise<unknown>) | undefined;
  let why = '';
  if (!postgresUrl) {
    const docker = process.env.DOCKER_HOST || existsSync('/var/run/docker.sock');
    if (docker) {
      try {
        const { GenericContainer, Wait } = await import('testcontainers');
        const container = await new GenericContainer('postgres:16')
          .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
          .withExposedPorts(5432)
          .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
          .start();
        postgresUrl = `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
        stopContainer = () => container.stop();
      } catch (error) {
        why = `Docker did not start a PostgreSQL container (${(error as Error).message.split('\n')[0]})`;
      }
    } else {
      why = 'DATABASE_URL is not set and no Docker engine answers';
    }
  }
  if (!postgresUrl) {
    const line = '!'.repeat(100);
    process.stderr.write(
      `\n${line}\n!! PostgreSQL tests are SKIPPED: ${why}.\n!! Only the embedded PGlite backend is tested. ` +
        `Set DATABASE_URL=postgres://… to run them (CI does).\n${line}\n\n`,
    );
  }
  project.provide('postgresUrl', postgresUrl);
  project.provide('postgresSkipReason', why);
  requireServices(Boolean(postgresUrl));

  return async () => {
    await stopContainer?.();
    rmSync(dir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteSnapshot: string;
    postgresUrl: string;
    postgresSkipReason: string;
  }
}

/**
 * REPWATCH_TEST_REQUIRE=postgres,dovecot,chromium (what .ci/run sets): a service the suite would skip
 * for being absent fails the run instead. A skip is right on a laptop without Dovecot; in CI it would
 * hide the IMAP and browser tests behind a green run.
 */
function requireServices(postgres: boolean): void {
  const required = (process.env.REPWATCH_TEST_REQUIRE ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const present: Record<string, boolean> = {
    postgres,
    dovecot: dovecotAvailable,
    chromium: existsSync('/usr/bin/chromium'),
  };
  const unknown = required.filter((name) => !(name in present));
  const missing = required.filter((name) => present[name] === false);
  if (unknown.length || missing.length) {
    throw new Error(
      `REPWATCH_TEST_REQUIRE names ${[...missing.map((m) => `${m} (missing: its tests would be skipped)`), ...unknown.map((u) => `${u} (unknown; known: ${Object.keys(present).join(', ')})`)].join(', ')}`,
    );
  }
}
