import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

/** Docker does not run on this project's machines, so the deployment files are checked as data. */
const compose = parseYaml(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as {
  services: Record<string, { image?: string; build?: unknown; command?: string[]; environment?: Record<string, string>; volumes?: string[]; secrets?: string[]; depends_on?: Record<string, unknown> }>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
};
const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');

describe('docker-compose.yml', () => {
  it('runs PostgreSQL 16 with a named volume and a password from a secret file', () => {
    const postgres = compose.services.postgres!;
    expect(postgres.image).toBe('postgres:16');
    expect(postgres.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(compose.volumes).toHaveProperty('postgres-data');
    expect(postgres.environment?.POSTGRES_PASSWORD_FILE).toMatch(/^\/run\/secrets\//);
    expect(JSON.stringify(postgres.environment)).not.toMatch(/POSTGRES_PASSWORD"/);
  });

  it('runs the repwatch scheduler built from the Dockerfile, reading repwatch.yaml and secrets from files', () => {
    const repwatch = compose.services.repwatch!;
    expect(repwatch.build).toBe('.');
    expect(repwatch.command?.slice(0, 1)).toEqual(['schedule']);
    expect(repwatch.volumes).toContain('./repwatch.yaml:/etc/repwatch/repwatch.yaml:ro');
    expect(repwatch.environment?.REPWATCH_CONFIG).toBe('/etc/repwatch/repwatch.yaml');
    expect(repwatch.environment?.DATABASE_URL_FILE).toMatch(/^\/run\/secrets\//);
    expect(repwatch.environment).not.toHaveProperty('DATABASE_URL');
    expect(repwatch.depends_on).toHaveProperty('postgres');
    for (const secret of repwatch.secrets ?? []) expect(compose.secrets[secret]?.file).toMatch(/^\.\/secrets\//);
  });

  it('runs Grafana with the provisioned datasource and dashboards, secrets from files, bound to localhost', () => {
    const grafana = compose.services.grafana! as (typeof compose.services)[string] & { ports?: string[] };
    expect(grafana.image).toMatch(/^grafana\/grafana(-oss)?:\d+\.\d+\.\d+$/);
    expect(grafana.volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(grafana.volumes).toContain('./deploy/grafana/dashboards:/etc/grafana/dashboards:ro');
    expect(grafana.volumes).toContain('grafana-data:/var/lib/grafana');
    expect(compose.volumes).toHaveProperty('grafana-data');
    expect(grafana.depends_on).toHaveProperty('postgres');
    expect(grafana.environment?.GF_SECURITY_ADMIN_PASSWORD__FILE).toMatch(/^\/run\/secrets\//);
    expect(grafana.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(JSON.stringify(grafana.environment)).not.toMatch(/GF_SECURITY_ADMIN_PASSWORD"/);
    expect(grafana.ports).toEqual(['127.0.0.1:3000:3000']);
    // The datasource reads its password from the secret compose mounts at /run/secrets/<name>.
    const datasource = readFileSync(new URL('../../deploy/grafana/provisioning/datasources/repwatch.yaml', import.meta.url), 'utf8');
    for (const secret of grafana.secrets ?? []) expect(compose.secrets[secret]?.file).toMatch(/^\.\/secrets\//);
    expect(grafana.secrets).toContain('grafana-db-password');
    expect(datasource).toContain('$__file{/run/secrets/grafana-db-password}');
    expect(datasource).toMatch(/url: postgres:5432/);
    expect(compose.services).toHaveProperty('postgres');
  });

  it('copies every folder the build compiles into the image', () => {
    const build = JSON.parse(readFileSync(new URL('../../tsconfig.build.json', import.meta.url), 'utf8')) as { include: string[] };
    const missing = build.include.filter((folder) => !new RegExp(`^COPY ${folder} \\./${folder}$`, 'm').test(dockerfile));
    expect(missing).toEqual([]);
  });

  it('builds from node:20-slim and runs as an unprivileged user', () => {
    expect(dockerfile).toMatch(/^FROM node:20-slim/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/npm ci/);
  });
});
