import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, redact, redactError, registerSecret, registerSecretUrl, redactValue } from '../../lib/redact.js';
import { createLogger } from '../../lib/logger.js';

afterEach(() => clearRegisteredSecrets());

describe('redaction', () => {
  it('scrubs keys in SNDS links, legacy and new, even unregistered', () => {
    expect(redact('GET https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key=0a1b2c3d-4e5f&date=112526 failed')).toBe(
      'GET https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key=[REDACTED]&date=112526 failed',
    );
    expect(redact('https://substrate.office.com/ip-domain-management-snds/SNDS/Auto/Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4/data')).not.toMatch(/Zm9vYmFy/);
  });

  it('scrubs registered secrets wherever they appear, URL-encoded too', () => {
    registerSecret('p@ss word!secret');
    expect(redact('login failed for p@ss word!secret')).toBe('login failed for [REDACTED]');
    expect(redact(`?x=${encodeURIComponent('p@ss word!secret')}`)).not.toMatch(/ss%20word/);
  });

  it('scrubs credentials in connection URLs and bearer tokens', () => {
    expect(redact('postgres://repwatch:hunter22@db:5432/x')).toBe('postgres://repwatch:[REDACTED]@db:5432/x');
    expect(redact('Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def')).toBe('Authorization: Bearer [REDACTED]');
  });

  it('registers every secret-looking part of a URL', () => {
    registerSecretUrl('https://snds.example/ipStatus.aspx?key=abc123def456');
    expect(redact('the key abc123def456 appeared in a body')).toBe('the key [REDACTED] appeared in a body');
  });

  it('redacts errors and nested log objects, stack traces included', () => {
    registerSecret('topsecret-token-1');
    const error = new Error('token topsecret-token-1 rejected');
    expect(redactError(error)).toBe('token [REDACTED] rejected');
    const value = redactValue({ a: [{ b: 'topsecret-token-1' }], err: error }) as { a: { b: string }[]; err: { stack: string } };
    expect(value.a[0]!.b).toBe('[REDACTED]');
    expect(value.err.stack).not.toContain('topsecret-token-1');
  });

  it('keeps secrets out of log lines', () => {
    registerSecret('logged-secret-42');
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString()));
    const logger = createLogger({ destination: out, pretty: false });
    logger.info({ url: 'https://x.example/d?key=logged-secret-42', nested: { why: 'logged-secret-42' } }, 'fetching with logged-secret-42');
    logger.error({ err: new Error('boom logged-secret-42') }, 'failed');
    const text = chunks.join('');
    expect(text).toContain('fetching with [REDACTED]');
    expect(text).not.toContain('logged-secret-42');
  });
});
