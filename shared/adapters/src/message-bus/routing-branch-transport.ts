import { isHttpUrl, kafkaTopicOf, KAFKA_SCHEME, KAFKA_TOPIC_NAME, type BranchOutcome } from '@dtm-ts/domain';
import type { BranchRequest, BranchTransport, BusMessage, MessageBus } from '@dtm-ts/ports';
import { payloadBytes } from '../grpc-branch/payload';
import { jsonRpcMethodOf } from '../json-rpc-branch/json-rpc-branch-transport';
import { describeError } from '../describe-error';

/** The scheme and Kafka's topic naming rule live in the domain (one place for the API and this transport). */
export { KAFKA_SCHEME, KAFKA_TOPIC_NAME };

/** Headers of every record the TM produces: the consumer contract (README, "Kafka delivery"). */
export const DTM_RECORD_HEADERS = {
  gid: 'dtm-gid',
  branchId: 'dtm-branch-id',
  transType: 'dtm-trans-type',
  /** W3C trace context, when the call carries one. */
  traceparent: 'traceparent',
} as const;

/**
 * The record for one delivery: key = gid (one transaction's records stay in order in one partition),
 * headers naming the transaction and branch so consumers can drop duplicates, value = the step's payload
 * byte for byte. Other branch headers are not copied: they are meant for HTTP consumers and may hold secrets.
 */
export const busMessageOf = (req: BranchRequest, topic: string): BusMessage => {
  const headers: Record<string, string> = {
    [DTM_RECORD_HEADERS.gid]: req.gid,
    [DTM_RECORD_HEADERS.branchId]: req.branchId,
    [DTM_RECORD_HEADERS.transType]: req.transType,
  };
  for (const name in req.headers) {
    if (name.toLowerCase() === DTM_RECORD_HEADERS.traceparent) {
      headers[DTM_RECORD_HEADERS.traceparent] = req.headers[name]!;
      break;
    }
  }
  return { topic, key: req.gid, headers, value: payloadBytes(req) };
};

/** A transport that can be shut down. */
export interface ClosableBranchTransport extends BranchTransport {
  close(): Promise<void>;
}

/** The transports a {@link RoutingBranchTransport} chooses from; only HTTP is required. */
export interface BranchRoutes {
  readonly http: ClosableBranchTransport;
  /** Without it, `kafka://` steps are errors (the API refuses them unless KAFKA_BROKERS is set). */
  readonly kafka?: MessageBus;
  /** Without it, gRPC urls are errors. */
  readonly grpc?: ClosableBranchTransport;
  /** JSON-RPC over the HTTP transport; without it, json-rpc transactions are called as plain HTTP. */
  readonly jsonRpc?: BranchTransport;
}

/**
 * Routes each branch call by its URL and the transaction's protocol, as DTM's `getURLResult` does:
 * `kafka://<topic>` to the Kafka bus; an http(s) url over HTTP, or as JSON-RPC when the transaction's protocol
 * is `json-rpc` and the url names a `?method=`; any other url (`host:port/package.Service/Method`) over gRPC.
 * A gRPC transaction's payloads are bytes (stored base64): HTTP sends them as the body, Kafka as the value.
 * Producing is calling the branch: success once the broker acknowledged, and any failure (broker down, timeout,
 * refused record) is an `error` outcome, retried with exponential backoff like an unreachable RM.
 */
export class RoutingBranchTransport implements ClosableBranchTransport {
  constructor(private readonly routes: BranchRoutes) {}

  async call(req: BranchRequest): Promise<BranchOutcome> {
    if (req.url === '' || isHttpUrl(req.url)) {
      const rpc = this.routes.jsonRpc;
      if (rpc && req.protocol === 'json-rpc' && jsonRpcMethodOf(req.url) !== '') return rpc.call(req);
      return this.routes.http.call(req);
    }
    const topic = kafkaTopicOf(req.url);
    if (topic === null) {
      if (!this.routes.grpc) return { kind: 'error', detail: `no gRPC transport for ${req.url}` };
      return this.routes.grpc.call(req);
    }
    // The API refuses such urls; this guards rows written before that rule or by hand.
    if (typeof topic !== 'string') return { kind: 'error', detail: `not a Kafka topic name: ${req.url}` };
    if (!this.routes.kafka) return { kind: 'error', detail: `kafka topic ${topic}: KAFKA_BROKERS is not set` };
    try {
      await this.routes.kafka.publish(busMessageOf(req, topic), { timeoutMs: req.timeoutMs });
      return { kind: 'success' };
    } catch (err) {
      // kafkajs says what went wrong in the class name (KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError…).
      const kind = err instanceof Error && err.name.startsWith('KafkaJS') ? `${err.name}: ` : '';
      return { kind: 'error', detail: `kafka topic ${topic}: ${kind}${describeError(err)}` };
    }
  }

  /** Closes the bus first (it flushes what is queued), then gRPC and HTTP. */
  async close(): Promise<void> {
    await this.routes.kafka?.close();
    await this.routes.grpc?.close();
    await this.routes.http.close();
  }
}
