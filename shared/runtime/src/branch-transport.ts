import { readFileSync } from 'node:fs';
import {
  connectToResolved,
  GrpcBranchTransport,
  HttpBranchTransport,
  JsonRpcBranchTransport,
  KafkaMessageBus,
  OutboundPolicy,
  OutboundRuleError,
  RoutingBranchTransport,
  type ClosableBranchTransport,
  type Resolver,
} from '@dtm-ts/adapters';
import { ConfigError, type Config } from '@dtm-ts/config';
import type { Protocol } from '@dtm-ts/domain';
import type { Logger } from '@dtm-ts/telemetry';

/** `host:port` of a URL's authority, with a default port; null when it has none (a unix socket). */
const endpointOf = (host: string, port: string, defaultPort: number) =>
  host === '' ? null : { host: host.replace(/^\[|\]$/g, ''), port: port === '' ? defaultPort : Number(port) };

/** Redis, EventStoreDB and Kafka endpoints this TM uses: never called as branches. */
const serviceEndpoints = (config: Config): { host: string; port: number }[] => {
  const out: ({ host: string; port: number } | null)[] = [];
  if (config.redisUrl) {
    const u = new URL(config.redisUrl);
    out.push(endpointOf(u.hostname, u.port, 6379));
  }
  // Only the seed nodes: the other masters are learnt at run time (list them in OUTBOUND_DENY if RMs can reach them).
  for (const n of config.redisCluster?.nodes ?? []) out.push({ host: n.host, port: n.port });
  if (config.esdbUrl) {
    // esdb://host:2113,host2:2113?tls=false: several hosts, so not a WHATWG URL.
    const hosts = config.esdbUrl.replace(/^[^:]+:\/\/([^@/]*@)?/, '').split(/[/?]/)[0] ?? '';
    for (const h of hosts.split(',')) {
      const u = new URL(`esdb://${h}`);
      out.push(endpointOf(u.hostname, u.port, 2113));
    }
  }
  for (const b of config.kafkaBrokers ?? []) {
    const u = new URL(`kafka://${b}`);
    out.push(endpointOf(u.hostname, u.port, 9092));
  }
  return out.filter((e) => e !== null);
};

/**
 * The outbound policy of a process (README, "Outbound calls"): OUTBOUND_ALLOW / OUTBOUND_DENY and
 * KAFKA_TOPIC_ALLOW, plus this TM's own ports (PORT, GRPC_PORT, METRICS_PORT) and its Redis, EventStoreDB and
 * Kafka endpoints, which are never called.
 */
export const createOutboundPolicy = (config: Config, opts: { resolve?: Resolver } = {}): OutboundPolicy => {
  const grpcPort = config.grpcPort;
  try {
    return new OutboundPolicy({
      allow: config.outboundAllow,
      deny: config.outboundDeny,
      kafkaTopicAllow: config.kafkaTopicAllow,
      ownPorts: [config.port, config.metricsPort, ...(grpcPort ? [grpcPort] : [])],
      services: serviceEndpoints(config),
      resolve: opts.resolve,
    });
  } catch (err) {
    if (err instanceof OutboundRuleError) throw new ConfigError(err.message);
    throw err;
  }
};

/** BRANCH_SIGNING_KEY, or the content of BRANCH_SIGNING_KEY_FILE; undefined when neither is set. */
export const branchSigningKey = (config: Config): string | undefined => {
  if (config.branchSigningKey !== undefined && config.branchSigningKeyFile !== undefined) {
    throw new ConfigError('set BRANCH_SIGNING_KEY or BRANCH_SIGNING_KEY_FILE, not both');
  }
  let key = config.branchSigningKey;
  const source = config.branchSigningKeyFile === undefined ? 'BRANCH_SIGNING_KEY' : 'BRANCH_SIGNING_KEY_FILE';
  if (config.branchSigningKeyFile !== undefined) {
    try {
      key = readFileSync(config.branchSigningKeyFile, 'utf8').trim();
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError(`BRANCH_SIGNING_KEY_FILE: cannot read ${config.branchSigningKeyFile} (${why})`);
    }
  }
  // The key itself never appears in an error.
  if (key !== undefined && key.length < 16) {
    throw new ConfigError(`${source}: the key needs at least 16 characters (openssl rand -hex 32)`);
  }
  return key;
};

/**
 * The branch protocols `createBranchTransport` can call: the API accepts transactions of these only
 * (anything else could never run). Add a protocol here when its transport is routed below.
 */
export const SERVED_PROTOCOLS: readonly Protocol[] = ['http', 'grpc', 'json-rpc'];

/**
 * The branch transport of a process: HTTP, JSON-RPC over it, gRPC (channels opened on first use), and when
 * KAFKA_BROKERS is set, Kafka for `kafka://<topic>` msg steps through one shared producer (it connects on the
 * first record, so a TM starts while Kafka is down). Each call is routed by its url and the transaction's protocol.
 * Every connection goes through `policy` (gRPC channels dial the address it checked); every HTTP call is signed
 * when a key is configured.
 */
export const createBranchTransport = (
  config: Config,
  logger: Logger,
  policy: OutboundPolicy = createOutboundPolicy(config),
): ClosableBranchTransport => {
  const http = new HttpBranchTransport({ policy, signingKey: branchSigningKey(config) });
  const grpc = new GrpcBranchTransport({
    connectTo: connectToResolved((host, port) => policy.resolveAllowed(host, port)),
  });
  const jsonRpc = new JsonRpcBranchTransport(http);
  if (!config.kafkaBrokers) return new RoutingBranchTransport({ http, grpc, jsonRpc });
  const mechanism = config.kafkaSaslMechanism;
  const username = config.kafkaSaslUsername;
  const password = config.kafkaSaslPassword;
  if (mechanism && (!username || password === undefined)) {
    throw new ConfigError(`KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`);
  }
  const kafka = new KafkaMessageBus({
    brokers: config.kafkaBrokers,
    clientId: config.kafkaClientId,
    ssl: config.kafkaSsl,
    sasl: mechanism && username && password !== undefined ? { mechanism, username, password } : undefined,
    allowAutoTopicCreation: config.kafkaAutoCreateTopics,
    topicRefusal: (topic) => policy.topicRefusal(topic),
    log: (level, message, fields) => logger[level]({ ...fields, component: 'kafka' }, message),
  });
  return new RoutingBranchTransport({ http, grpc, jsonRpc, kafka });
};
