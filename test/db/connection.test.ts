import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, type TestDatabase } from '../support/backends.js';

const postgres = backends().find((b) => b.name === 'postgres')!;

describe.skipIf(!postgres.available)(`a session whose connection the server drops [postgres${postgres.available ? '' : `: SKIPPED, ${postgres.skipReason}`}]`, () => {
  let handle: TestDatabase;
  beforeAll(async () => {
    handle = await postgres.create({ migrated: false });
  });
  afterAll(async () => {
    await handle?.drop();
  });

  it('does not take the process down while idle (as a job\'s lock session is): its next query fails, the pool goes on', async () => {
    const db = handle.database;
    const failure = await db.withSession(async (session) => {
      const [{ pid }] = (await session.query<{ pid: number }>('select pg_backend_pid() as pid')) as [{ pid: number }];
      // Another connection ends this one while it sits checked out and idle.
      await db.query('select pg_terminate_backend($1)', [pid]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return session.query('select 1').then(
        () => null,
        (error: Error) => error.message,
      );
    });
    expect(failure).toMatch(/terminat|Connection/i);
    // The broken client was discarded: new sessions and queries work.
    expect(await db.query<{ n: number }>('select 1 as n')).toEqual([{ n: 1 }]);
    expect(await db.withSession((s) => s.query<{ n: number }>('select 2 as n'))).toEqual([{ n: 2 }]);
  });
});
