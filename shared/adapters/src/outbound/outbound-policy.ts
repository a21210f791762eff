import { lookup as dnsLookup } from 'node:dns/promises';
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { parseIp, type Ip } from './ip';
import {
  builtInDenial,
  isCatchAll,
  isLoopback,
  normalizeName,
  parseRules,
  ruleMatches,
  type Rule,
  type Target,
} from './rules';
import { kafkaTopicRefusal, parseTopicPatterns, type TopicPatterns } from './kafka-topics';

/** One resolved address, as `dns.lookup` with `all: true` gives them. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Resolves a host name to every address it has (default: `dns.lookup`, as sockets do). */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** Options of {@link OutboundPolicy}. */
export interface OutboundPolicyOptions {
  /** OUTBOUND_ALLOW: when set, only calls matching an entry are made. */
  readonly allow?: string;
  /** OUTBOUND_DENY: calls matching an entry are refused (deny wins over allow). */
  readonly deny?: string;
  /** KAFKA_TOPIC_ALLOW: glob patterns of the topics `kafka://` steps may name; unset: any but Kafka's internal ones. */
  readonly kafkaTopicAllow?: string;
  /** Ports this TM listens on (API, gRPC, metrics), refused on every address of this host. */
  readonly ownPorts?: readonly number[];
  /** `host:port` of this TM's own services (Redis, EventStoreDB, Kafka), refused whatever the lists say. */
  readonly services?: readonly { readonly host: string; readonly port: number }[];
  /** Addresses of this host (default: every interface's). Loopback always counts. */
  readonly localAddresses?: readonly string[];
  /** Names of this host (default: `localhost` and the OS host name). Every `*.localhost` name counts too. */
  readonly localNames?: readonly string[];
  /** Name resolution at connect time (tests inject one). */
  readonly resolve?: Resolver;
}

/** A call refused by the outbound policy. At connect time it fails the call, an error outcome like a refused socket. */
export class OutboundRefused extends Error {
  override readonly name = 'OutboundRefused';
  readonly code = 'EOUTBOUND';
}

const defaultResolve: Resolver = (host) => dnsLookup(host, { all: true });

const interfaceAddresses = (): string[] =>
  Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };
/** Most URL verdicts an OutboundPolicy keeps. */
const URL_REFUSALS_MAX = 4096;
/** Longer URLs are decided each time, so the cache stays within a few MB. */
const URL_CACHED_CHARS = 512;

/**
 * The outbound policy (README, "Outbound calls"): which hosts, addresses and ports the TM may call on behalf of
 * a client, and which Kafka topics it may produce to. Transport-agnostic: {@link refusal} is checked when a URL
 * is submitted (no DNS), {@link resolveAllowed} when a connection is opened (every resolved address checked,
 * so a name that later resolves elsewhere, DNS rebinding, is caught where it matters).
 *
 * In order: the TM's own endpoints are always refused; the built-in denials (metadata, link-local,
 * unspecified) are refused unless an OUTBOUND_ALLOW entry other than a catch-all names them; then OUTBOUND_DENY
 * refuses; then, when OUTBOUND_ALLOW is set, whatever it does not match is refused.
 */
export class OutboundPolicy {
  private readonly allow: readonly Rule[];
  private readonly deny: readonly Rule[];
  /** OUTBOUND_ALLOW has CIDR entries, which only an address can match. */
  private readonly allowHasRanges: boolean;
  private readonly topics: TopicPatterns;
  private readonly ownPorts: Set<number>;
  /**
   * Verdicts of recent URLs (each submit asks about the same few RM URLs, and parsing one costs more than
   * deciding); cleared when full (URLs are the clients' choice) and when the rules change (addOwnPort).
   */
  private readonly urlRefusals = new Map<string, string | null>();
  private readonly services: readonly { readonly name: string | null; readonly ip: Ip | null; readonly port: number }[];
  private readonly localIps: readonly Ip[];
  private readonly localNames: ReadonlySet<string>;
  private readonly resolve: Resolver;
  /** Addresses of the services that are named by host name, resolved on the first connect check. */
  private serviceIps: Promise<readonly { readonly ip: Ip; readonly port: number }[]> | null = null;

  /** @throws {@link OutboundRuleError} naming a list entry that cannot be read */
  constructor(opts: OutboundPolicyOptions = {}) {
    this.allow = parseRules(opts.allow, 'OUTBOUND_ALLOW');
    this.deny = parseRules(opts.deny, 'OUTBOUND_DENY');
    this.allowHasRanges = this.allow.some((r) => r.match.kind === 'cidr');
    this.topics = parseTopicPatterns(opts.kafkaTopicAllow);
    this.ownPorts = new Set((opts.ownPorts ?? []).filter((p) => p > 0));
    this.services = (opts.services ?? []).map((s) => {
      const ip = parseIp(s.host);
      return { name: ip ? null : normalizeName(s.host), ip, port: s.port };
    });
    this.localIps = (opts.localAddresses ?? interfaceAddresses()).flatMap((a) => parseIp(a) ?? []);
    const host = normalizeName(osHostname());
    this.localNames = new Set((opts.localNames ?? ['localhost', host, host.split('.')[0]!]).map(normalizeName));
    this.resolve = opts.resolve ?? defaultResolve;
  }

  /** Adds a port this TM listens on (the API's, once it knows it when it was started on port 0). */
  addOwnPort(port: number): void {
    if (port > 0) this.ownPorts.add(port);
    this.urlRefusals.clear();
  }

  /**
   * Why a call to `url` (an http(s) URL, `kafka://<topic>`, or a gRPC target `host:port/…`) would be refused,
   * or null; or, given a port, why a call to `host:port` would be. Pure: names are not resolved (see
   * {@link resolveAllowed}). `topic://` urls and unparsable ones answer null: they are expanded, or refused
   * by validation, elsewhere.
   */
  refusal(urlOrHost: string, port?: number): string | null {
    if (port !== undefined) return this.hostRefusal(urlOrHost, port, `${urlOrHost}:${port}`);
    if (urlOrHost.length > URL_CACHED_CHARS) return this.urlRefusal(urlOrHost);
    let verdict = this.urlRefusals.get(urlOrHost);
    if (verdict === undefined) {
      if (this.urlRefusals.size >= URL_REFUSALS_MAX) this.urlRefusals.clear();
      verdict = this.urlRefusal(urlOrHost);
      this.urlRefusals.set(urlOrHost, verdict);
    }
    return verdict;
  }

  private urlRefusal(url: string): string | null {
    if (url === '' || url.startsWith('topic://')) return null;
    if (url.startsWith('kafka://')) return this.topicRefusal(url.slice('kafka://'.length));
    let u: URL;
    try {
      // DTM's gRPC targets are `host:port/package.Service/Method`, optionally `dns:///host:port/…`.
      u = /^https?:\/\//i.test(url) ? new URL(url) : new URL(`grpc://${url.replace(/^dns:(\/\/\/)?/, '')}`);
    } catch {
      return null;
    }
    const p = u.port === '' ? (DEFAULT_PORTS[u.protocol] ?? 443) : Number(u.port);
    return this.hostRefusal(u.hostname, p, url);
  }

  /** Why producing to Kafka `topic` is refused (KAFKA_TOPIC_ALLOW, internal topics), or null. */
  topicRefusal(topic: string): string | null {
    return kafkaTopicRefusal(this.topics, topic, `kafka://${topic}`);
  }

  /**
   * Resolves `hostname` and checks every address it has for a connection to `port`; resolves with the
   * addresses (connect to those, not to a second resolution) or rejects with {@link OutboundRefused}.
   * An IP literal is checked as it is.
   */
  async resolveAllowed(hostname: string, port: number): Promise<readonly ResolvedAddress[]> {
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    const literal = parseIp(host);
    const name = literal ? null : normalizeName(host);
    const nameRefusal = this.decide({ name, ip: literal, port });
    if (nameRefusal) {
      throw new OutboundRefused(`outbound call to ${hostname}:${port} refused: ${host} ${nameRefusal}`);
    }
    const addresses = literal ? [{ address: host, family: literal.v }] : await this.resolve(host);
    const services = await this.resolvedServices();
    for (const a of addresses) {
      const ip = parseIp(a.address);
      if (!ip)
        throw new OutboundRefused(`outbound call to ${hostname}:${port} refused: unreadable address ${a.address}`);
      const why = this.decide({ name, ip, port }) ?? this.serviceDenial(ip, port, services);
      if (why) {
        const shown = literal ? host : `${hostname} resolved to ${a.address}, which`;
        throw new OutboundRefused(`outbound call to ${hostname}:${port} refused: ${shown} ${why}`);
      }
    }
    return addresses;
  }

  private hostRefusal(hostname: string, port: number, shown: string): string | null {
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    const ip = parseIp(host);
    const why = this.decide({ name: ip ? null : normalizeName(host), ip, port });
    return why && `${shown}: ${host} ${why}`;
  }

  /** The policy's verdict on one target (see the class comment for the order), as the end of a sentence. */
  private decide(t: Target): string | null {
    if (this.isOwnEndpoint(t)) return `is this TM's own endpoint (port ${t.port}); never called`;
    const allowHit = this.allow.find((r) => ruleMatches(r, t));
    const builtIn = builtInDenial(t);
    if (builtIn && !(allowHit && !isCatchAll(allowHit))) return `is ${builtIn}: denied by default`;
    const denyHit = this.deny.find((r) => ruleMatches(r, t));
    if (denyHit) return `matches OUTBOUND_DENY entry '${denyHit.text}'`;
    // A name not resolved yet may still land in an allowed CIDR: that is for the connect-time check to say.
    if (this.allow.length > 0 && !allowHit && !(t.ip === null && this.allowHasRanges)) {
      return 'matches no OUTBOUND_ALLOW entry';
    }
    return null;
  }

  private isLocal(t: Target): boolean {
    if (t.ip) {
      const ip = t.ip;
      return isLoopback(ip) || builtInDenial(t) !== null || this.localIps.some((l) => l.v === ip.v && l.n === ip.n);
    }
    return t.name !== null && (this.localNames.has(t.name) || t.name.endsWith('.localhost'));
  }

  private isOwnEndpoint(t: Target): boolean {
    if (this.ownPorts.has(t.port) && this.isLocal(t)) return true;
    return this.services.some(
      (s) =>
        s.port === t.port &&
        ((s.name !== null && s.name === t.name) ||
          (s.ip !== null && t.ip !== null && s.ip.v === t.ip.v && s.ip.n === t.ip.n) ||
          (this.isLocal({ name: s.name, ip: s.ip, port: s.port }) && this.isLocal(t))),
    );
  }

  private serviceDenial(ip: Ip, port: number, services: readonly { ip: Ip; port: number }[]): string | null {
    const hit = services.some((s) => s.port === port && s.ip.v === ip.v && s.ip.n === ip.n);
    return hit ? `is this TM's own endpoint (port ${port}); never called` : null;
  }

  /** The addresses of the services named by host name; a failed resolution is tried again next time. */
  private resolvedServices(): Promise<readonly { ip: Ip; port: number }[]> {
    const named = this.services.filter((s) => s.name !== null);
    if (named.length === 0) return Promise.resolve([]);
    this.serviceIps ??= Promise.all(
      named.map(async (s) =>
        (await this.resolve(s.name!)).flatMap((a) => parseIp(a.address) ?? []).map((ip) => ({ ip, port: s.port })),
      ),
    )
      .then((lists) => lists.flat())
      .catch(() => {
        this.serviceIps = null;
        return [];
      });
    return this.serviceIps;
  }
}
