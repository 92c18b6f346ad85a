import { promises as dns } from 'node:dns';

/**
 * One DNS resolver for the checks: the system's servers, or the one given as `host:port` (config
 * `blocklists.resolver`, `--resolver`). DNSBLs answer public resolvers badly (Spamhaus refuses them),
 * so operators point this at their own recursive resolver. Every query has a timeout and one retry at
 * most, so a dead zone cannot stall the daily job.
 */
export interface CheckResolver {
  /** A records; [] for NXDOMAIN / no data. Other failures throw with a `code`. */
  resolve4(name: string): Promise<string[]>;
  /** TXT records (each joined from its strings); [] for NXDOMAIN / no data. */
  resolveTxt(name: string): Promise<string[]>;
  /** The function mailauth takes as `resolver`: node:dns semantics (throws ENOTFOUND / ENODATA). */
  mailauth(name: string, rrtype: string): Promise<never>;
  servers: string[];
}

export function createCheckResolver(options: { server?: string | undefined; timeoutMs: number }): CheckResolver {
  const resolver = new dns.Resolver({ timeout: options.timeoutMs, tries: 1 });
  if (options.server) resolver.setServers([normaliseServer(options.server)]);
  const empty = (error: unknown): string[] => {
    const code = (error as { code?: string }).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
    throw error;
  };
  return {
    servers: resolver.getServers(),
    resolve4: (name) => resolver.resolve4(name).catch(empty),
    resolveTxt: async (name) => (await resolver.resolveTxt(name).catch((e) => empty(e) as unknown as string[][])).map((parts) => parts.join('')),
    mailauth: (name, rrtype) => resolver.resolve(name, rrtype) as Promise<never>,
  };
}

/** `host:port`, `[v6]:port` or a bare host; node:dns wants `host:port` / `[v6]:port`. */
function normaliseServer(server: string): string {
  const text = server.trim();
  if (/^\[.*\](:\d+)?$/.test(text) || /^[^:]+(:\d+)?$/.test(text)) return text;
  return `[${text}]`; // a bare IPv6 address
}
