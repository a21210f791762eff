import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

/**
 * One scripted answer of a gRPC RM: a status code (0 = OK) with optional details and a delay before answering,
 * or `'hang'`: never answer (the TM's deadline ends the call).
 */
export type GrpcReply = number | { code: number; details?: string; delayMs?: number } | 'hang';

/** A call as the peer received it. */
export interface GrpcRecordedCall {
  /** `/busi.Busi/TransIn`. */
  readonly method: string;
  /** The request bytes exactly as sent. */
  readonly body: Buffer;
  /** Every metadata entry (first value; binary ones as base64). */
  readonly metadata: Record<string, string>;
  /** The client's address as the server saw it: the same for calls over one connection. */
  readonly peer: string;
  readonly at: number;
}

/** A scripted gRPC RM on 127.0.0.1 for tests; any method of {@link PEER_METHODS} answers OK unless scripted. */
export interface GrpcBranchPeer {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly port: number;
  /** DTM's branch url of a method: `127.0.0.1:<port>/busi.Busi/<name>` (or the full path given). */
  url(method: string): string;
  readonly calls: GrpcRecordedCall[];
  /** The calls of one transaction (metadata `dtm-gid`) to one method (`TransIn` or a full path). */
  callsTo(gid: string, method: string): GrpcRecordedCall[];
  /** Replies to `method` for transaction `gid`, consumed in order; the last one repeats forever. */
  script(gid: string, method: string, replies: GrpcReply[]): void;
  close(): Promise<void>;
}

/** The methods a peer serves: saga, TCC, XA and msg names of DTM's busi service, and DTM's workflow callback. */
export const PEER_METHODS: readonly string[] = [
  ...['TransIn', 'TransOut', 'TransInRevert', 'TransOutRevert', 'TransInConfirm', 'TransOutConfirm']
    .concat(['TransInTcc', 'TransOutTcc', 'TransInXa', 'TransOutXa', 'QueryPrepared', 'Step2', 'Step2Revert'])
    .map((m) => `/busi.Busi/${m}`),
  '/workflow.Workflow/Execute',
];

const identity = (b: Buffer): Buffer => b;
const fullPath = (method: string): string => (method.startsWith('/') ? method : `/busi.Busi/${method}`);

/** Starts a peer on an ephemeral port (or on `port`, to bring an RM back where the TM expects it). */
export const startGrpcBranchPeer = async (port = 0): Promise<GrpcBranchPeer> => {
  const calls: GrpcRecordedCall[] = [];
  const scripts = new Map<string, GrpcReply[]>();
  const key = (gid: string, method: string): string => `${gid} ${fullPath(method)}`;

  const definition: Record<string, ServiceDefinition[string]> = {};
  const impl: UntypedServiceImplementation = {};
  for (const path of PEER_METHODS) {
    definition[path] = {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    impl[path] = (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>): void => {
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) {
        metadata[k] = Buffer.isBuffer(v) ? v.toString('base64') : v;
      }
      calls.push({ method: path, body: call.request, metadata, peer: call.getPeer(), at: Date.now() });
      const queue = scripts.get(key(metadata['dtm-gid'] ?? '', path));
      const reply: GrpcReply = (queue && (queue.length > 1 ? queue.shift() : queue[0])) ?? status.OK;
      if (reply === 'hang') return;
      const { code, details, delayMs } = typeof reply === 'number' ? { code: reply, details: '', delayMs: 0 } : reply;
      const answer = (): void => {
        if (code === 0) callback(null, Buffer.alloc(0));
        else callback({ code, details: details ?? `scripted ${code}` });
      };
      if (delayMs) setTimeout(answer, delayMs);
      else answer();
    };
  }
  const server = new Server();
  server.addService(definition, impl);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `127.0.0.1:${bound}`;
  return {
    address,
    port: bound,
    url: (method) => `${address}${fullPath(method)}`,
    calls,
    callsTo: (gid, method) => calls.filter((c) => c.metadata['dtm-gid'] === gid && c.method === fullPath(method)),
    script: (gid, method, replies) => scripts.set(key(gid, method), [...replies]),
    // forceShutdown cuts hanging calls, so a test never waits for them.
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
};
