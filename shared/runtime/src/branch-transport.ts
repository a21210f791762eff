import {
  GrpcBranchTransport,
  HttpBranchTransport,
  JsonRpcBranchTransport,
  KafkaMessageBus,
  RoutingBranchTransport,
  type ClosableBranchTransport,
} from '@dtm-ts/adapters';
import { ConfigError, type Config } from '@dtm-ts/config';
import type { Logger } from '@dtm-ts/telemetry';

/**
 * The branch transport of a process: HTTP, JSON-RPC over it, gRPC (channels opened on first use), and when
 * KAFKA_BROKERS is set, Kafka for `kafka://<topic>` msg steps through one shared producer (it connects on the
 * first record, so a TM starts while Kafka is down). Each call is routed by its url and the transaction's protocol.
 */
export const createBranchTransport = (config: Config, logger: Logger): ClosableBranchTransport => {
  const http = new HttpBranchTransport();
  const grpc = new GrpcBranchTransport();
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
    log: (level, message, fields) => logger[level]({ ...fields, component: 'kafka' }, message),
  });
  return new RoutingBranchTransport({ http, grpc, jsonRpc, kafka });
};
