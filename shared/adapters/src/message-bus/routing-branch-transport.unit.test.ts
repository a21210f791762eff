import { describe, expect, it } from 'vitest';
import type { BranchOutcome } from '@dtm-ts/domain';
import type { BranchRequest } from '@dtm-ts/ports';
import type { BusMessage, MessageBus } from '@dtm-ts/ports';
import { RoutingBranchTransport, type ClosableBranchTransport } from './routing-branch-transport';

const request = (over: Partial<BranchRequest> = {}): BranchRequest => ({
  gid: 'order-1001',
  transType: 'msg',
  branchId: '02',
  op: 'action',
  url: 'kafka://orders.v1',
  data: '{"amount":30,"who":"Zoë"}',
  headers: {},
  timeoutMs: 3000,
  ...over,
});

const fakes = (publish: (m: BusMessage) => Promise<void> = () => Promise.resolve()) => {
  const log: string[] = [];
  const published: { message: BusMessage; timeoutMs: number }[] = [];
  const httpCalls: BranchRequest[] = [];
  const http: ClosableBranchTransport = {
    call: (req) => {
      httpCalls.push(req);
      return Promise.resolve<BranchOutcome>({ kind: 'success' });
    },
    close: () => {
      log.push('http closed');
      return Promise.resolve();
    },
  };
  const kafka: MessageBus = {
    publish: (message, opts) => {
      published.push({ message, timeoutMs: opts.timeoutMs });
      return publish(message);
    },
    close: () => {
      log.push('kafka closed');
      return Promise.resolve();
    },
  };
  const grpcCalls: BranchRequest[] = [];
  const grpc: ClosableBranchTransport = {
    call: (req) => {
      grpcCalls.push(req);
      return Promise.resolve<BranchOutcome>({ kind: 'success' });
    },
    close: () => {
      log.push('grpc closed');
      return Promise.resolve();
    },
  };
  const rpcCalls: BranchRequest[] = [];
  const jsonRpc = {
    call: (req: BranchRequest) => {
      rpcCalls.push(req);
      return Promise.resolve<BranchOutcome>({ kind: 'success' });
    },
  };
  return {
    transport: new RoutingBranchTransport({ http, kafka, grpc, jsonRpc }),
    published,
    httpCalls,
    grpcCalls,
    rpcCalls,
    log,
  };
};

describe('routing branch transport', () => {
  it('when a step names a Kafka topic, then one message goes to it: key gid, dtm headers, payload bytes', async () => {
    const { transport, published, httpCalls } = fakes();
    expect(await transport.call(request())).toEqual({ kind: 'success' });
    expect(httpCalls).toEqual([]);
    expect(published).toHaveLength(1);
    const [{ message, timeoutMs }] = published as [(typeof published)[0]];
    expect(message.topic).toBe('orders.v1');
    expect(message.key).toBe('order-1001');
    expect(message.headers).toEqual({ 'dtm-gid': 'order-1001', 'dtm-branch-id': '02', 'dtm-trans-type': 'msg' });
    expect(Buffer.from(message.value).equals(Buffer.from('{"amount":30,"who":"Zoë"}', 'utf8'))).toBe(true);
    expect(timeoutMs).toBe(3000);
  });

  it('when the call carries a traceparent, then the message carries it; other branch headers stay behind', async () => {
    const { transport, published } = fakes();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await transport.call(request({ headers: { Authorization: 'Bearer s3cret', Traceparent: traceparent } }));
    expect(published[0]!.message.headers).toEqual({
      'dtm-gid': 'order-1001',
      'dtm-branch-id': '02',
      'dtm-trans-type': 'msg',
      traceparent,
    });
  });

  it('when the payload is empty, then the value is empty, not null', async () => {
    const { transport, published } = fakes();
    await transport.call(request({ data: '' }));
    expect(published[0]!.message.value).toHaveLength(0);
  });

  it('when the bus fails, then the outcome is an error naming the topic and the cause, so it is retried', async () => {
    const { transport } = fakes(() => Promise.reject(new Error('Connection error: connect ECONNREFUSED')));
    const outcome = await transport.call(request());
    expect(outcome).toEqual({
      kind: 'error',
      detail: 'kafka topic orders.v1: Connection error: connect ECONNREFUSED',
    });
  });

  it('when kafkajs names the failure by its error class, then the detail keeps the class name', async () => {
    class KafkaJSNumberOfRetriesExceeded extends Error {
      override name = 'KafkaJSNumberOfRetriesExceeded';
    }
    const { transport } = fakes(() => Promise.reject(new KafkaJSNumberOfRetriesExceeded('Request timed out')));
    expect(await transport.call(request())).toEqual({
      kind: 'error',
      detail: 'kafka topic orders.v1: KafkaJSNumberOfRetriesExceeded: Request timed out',
    });
  });

  it('when the url is not kafka://, then the HTTP transport gets the call unchanged', async () => {
    const { transport, published, httpCalls } = fakes();
    const req = request({ url: 'http://rm/TransIn' });
    expect(await transport.call(req)).toEqual({ kind: 'success' });
    expect(httpCalls).toEqual([req]);
    expect(published).toEqual([]);
  });

  it('when the topic is not a legal Kafka name, then an error outcome and nothing is published', async () => {
    const { transport, published } = fakes();
    for (const url of ['kafka://', 'kafka://a b', 'kafka://..', `kafka://${'x'.repeat(250)}`]) {
      expect((await transport.call(request({ url }))).kind).toBe('error');
    }
    expect(published).toEqual([]);
  });

  it('when closed, then the bus is flushed and closed before gRPC and HTTP', async () => {
    const { transport, log } = fakes();
    await transport.close();
    expect(log).toEqual(['kafka closed', 'grpc closed', 'http closed']);
  });

  it('when the url is host:port/package.Service/Method, then the gRPC transport gets the call unchanged', async () => {
    const { transport, httpCalls, grpcCalls } = fakes();
    const req = request({ url: 'localhost:58081/busi.Busi/TransIn', protocol: 'grpc', data: 'CB4=' });
    expect(await transport.call(req)).toEqual({ kind: 'success' });
    expect(grpcCalls).toEqual([req]);
    expect(httpCalls).toEqual([]);
  });

  it('when a gRPC transaction calls an http url, then the HTTP transport gets it (and sends its bytes as the body)', async () => {
    const { transport, httpCalls, grpcCalls } = fakes();
    const req = request({ url: 'http://rm/TransIn', protocol: 'grpc', data: 'CB7/AA==' });
    await transport.call(req);
    expect(httpCalls).toEqual([req]);
    expect(grpcCalls).toEqual([]);
  });

  it('when a gRPC transaction produces to Kafka, then the value is the payload bytes, not their base64', async () => {
    const { transport, published } = fakes();
    await transport.call(request({ protocol: 'grpc', data: 'CB7/AA==' }));
    expect(Buffer.from(published[0]!.message.value).equals(Buffer.from([0x08, 0x1e, 0xff, 0x00]))).toBe(true);
  });

  it('when a json-rpc transaction names ?method=, then JSON-RPC gets the call; without it, plain HTTP (as DTM)', async () => {
    const { transport, httpCalls, rpcCalls } = fakes();
    const rpc = request({ url: 'http://rm/api/json-rpc?method=TransIn', protocol: 'json-rpc' });
    const plain = request({ url: 'http://rm/TransIn', protocol: 'json-rpc' });
    const httpTx = request({ url: 'http://rm/api?method=TransIn' });
    await transport.call(rpc);
    await transport.call(plain);
    await transport.call(httpTx);
    expect(rpcCalls).toEqual([rpc]);
    expect(httpCalls).toEqual([plain, httpTx]);
  });
});
