import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeEachBackend } from '../support/backends.js';
import { insertFixture, IPS } from './fixture.js';

const root = new URL('../../deploy/grafana/', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('dashboards/repwatch.json', root), 'utf8')) as {
  uid: string;
  panels: { title: string; datasource: { uid: string; type: string }; targets: { rawSql: string; format: string }[] }[];
  templating: { list: { name: string; query: string; datasource: { uid: string } }[] };
};
const datasources = parseYaml(readFileSync(new URL('provisioning/datasources/repwatch.yaml', root), 'utf8')) as {
  datasources: { uid: string; type: string; user: string; jsonData: { database: string }; secureJsonData: { password: string } }[];
};
const providers = parseYaml(readFileSync(new URL('provisioning/dashboards/repwatch.yaml', root), 'utf8')) as { providers: { options: { path: string } }[] };

/** Grafana's macros and the dashboard's variables replaced with concrete SQL for the fixture's period. */
const FROM = "'2026-10-01T00:00:00Z'::timestamptz";
const TO = "'2026-12-01T00:00:00Z'::timestamptz";
function concrete(sql: string): string {
  return sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, column: string) => `${column.trim()} between ${FROM} and ${TO}`)
    .replace(/\$__timeFrom\(\)/g, FROM)
    .replace(/\$__timeTo\(\)/g, TO)
    .replace(/\$\{?ip(?::\w+)?\}?/g, `'${IPS.fix}','${IPS.risk}'`)
    .replace(/\$\{?pool\}?/g, 'all');
}

const queries = [
  ...dashboard.panels.flatMap((p) => p.targets.map((t, i) => ({ name: `panel "${p.title}"${i ? ` #${i + 1}` : ''}`, sql: t.rawSql }))),
  ...dashboard.templating.list.map((v) => ({ name: `variable $${v.name}`, sql: v.query })),
];

describe('Grafana provisioning files', () => {
  it('point every panel and variable at the provisioned read-only PostgreSQL datasource', () => {
    const [ds] = datasources.datasources;
    expect(ds!.type).toBe('grafana-postgresql-datasource');
    expect(ds!.jsonData.database).toBe('repwatch');
    expect(ds!.user).toBe('$__env{GRAFANA_DB_USER}');
    expect(ds!.secureJsonData.password).toMatch(/^\$__file\{\/run\/secrets\//);
    for (const p of dashboard.panels) expect(p.datasource.uid, p.title).toBe(ds!.uid);
    for (const v of dashboard.templating.list) expect(v.datasource.uid).toBe(ds!.uid);
    expect(providers.providers[0]!.options.path).toBe('/etc/grafana/dashboards');
  });

  it('reads only the analytics views', () => {
    expect(queries.length).toBeGreaterThanOrEqual(15);
    for (const q of queries) {
      const relations = [...q.sql.matchAll(/\b(?:from|join)\s+([a-z_][\w.]*)(?![\w.]|\s*\()/gi)].map((m) => m[1]!);
      expect(relations.length, q.name).toBeGreaterThan(0);
      for (const relation of relations) expect(relation, q.name).toMatch(/^analytics\./);
    }
  });
});

describeEachBackend('every SQL query of the Grafana dashboard', (db, backend) => {
  let asBi = false;
  beforeAll(async () => {
    await insertFixture(db());
    asBi = (await db().query(`select 1 from pg_roles where rolname = 'repwatch_bi'`)).length > 0;
  });

  it('runs as the role repwatch_bi where it exists (always on the test server)', () => {
    if (backend.name === 'postgres') expect(asBi).toBe(true);
  });

  for (const q of queries) {
    it(`${q.name} runs and returns rows for the fixture`, async () => {
      const sql = concrete(q.sql);
      expect(sql).not.toMatch(/\$/);
      const rows = await db().transaction(async (session) => {
        if (asBi) await session.query('set local role repwatch_bi');
        return session.query(sql);
      });
      expect(rows.length).toBeGreaterThan(0);
    });
  }
});
