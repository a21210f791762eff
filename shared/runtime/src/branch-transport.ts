import {
  HttpBranchTransport,
  KafkaMessageBus,
  RoutingBranchTransport,
  type ClosableBranchTransport,
} from '@dtm-ts/adapters';
import { ConfigError, type Config } from '@dtm-ts/config';
import type { Protocol } from '@dtm-ts/domain';
import type { Logger } from '@dtm-ts/telemetry';

/**
 * The branch protocols `createBranchTransport` can call: the API accepts transactions of these only
 * (anything else could never run). Add a protocol here when its transport is routed below.
 */
export const SERVED_PROTOCOLS: readonly Protocol[] = ['http'];

/**
 * The branch transport of a process: HTTP, and when KAFKA_BROKERS is set, Kafka for `kafka://<topic>`
 * msg steps through one shared producer (it connects on the first record, so a TM starts while Kafka is down).
 */
export const createBranchTransport = (config: Config, logger: Logger): ClosableBranchTransport => {
  const http = new HttpBranchTransport();
  if (!config.kafkaBrokers) return http;
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
  return new RoutingBranchTransport({ http, kafka });
};
