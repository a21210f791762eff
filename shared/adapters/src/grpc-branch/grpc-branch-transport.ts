import { Client, credentials, Metadata, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { classifyGrpc, parseGrpcUrl, type BranchOutcome, type GrpcUrl } from '@dtm-ts/domain';
import type { BranchRequest } from '@dtm-ts/ports';
import type { ClosableBranchTransport } from '../message-bus/routing-branch-transport';
import { payloadBytes, workflowDataMessage } from './payload';

/** Options of {@link GrpcBranchTransport}. */
export interface GrpcBranchTransportOptions {
  /** The TM's gRPC address, sent to RMs as `dtm-dtm` (nested TCC registers through it). Default ''. */
  readonly dtmAddress?: string;
  /** A channel unused for this long is closed (default 60 s); the next call to its target opens a new one. */
  readonly idleMs?: number;
  /** Most channels kept open; past it, the least recently used idle one is closed first (default 1024). */
  readonly maxChannels?: number;
  /**
   * Decides where a target's channel connects, before it is created: answer the address to dial (e.g. the
   * resolved IP checked by an outbound policy) or a refusal, which makes the call an `error` outcome. Without
   * it, grpc-js resolves `url.target` itself.
   */
  readonly connectTo?: (url: GrpcUrl) => Promise<{ readonly target: string } | { readonly refused: string }>;
}

/** Metadata names of a branch call, as DTM's `TransInfo2Ctx` sets them. */
export const DTM_GRPC_METADATA = {
  gid: 'dtm-gid',
  transType: 'dtm-trans_type',
  branchId: 'dtm-branch_id',
  op: 'dtm-op',
  dtm: 'dtm-dtm',
} as const;

/** Reconnect quickly after an RM restarts: the TM's own retry schedule spaces the calls, not the channel's. */
const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

const identity = (b: Buffer): Buffer => b;

interface Channel {
  readonly client: Client;
  lastUsed: number;
  inflight: number;
}

/**
 * Calls RM branch operations over gRPC as DTM's TM does (reference §3.2): the url `host:port/package.Service/Method`
 * names the channel target and the method; the body is the stored payload bytes, sent with a raw-bytes codec
 * (no protobuf schema needed); metadata `dtm-gid`, `dtm-trans_type`, `dtm-branch_id`, `dtm-op`, `dtm-dtm` plus the
 * branch headers (and `traceparent`); the deadline is the request timeout. The status decides the outcome
 * ({@link classifyGrpc}). One channel per target, reused by every call, closed after `idleMs` without calls.
 */
export class GrpcBranchTransport implements ClosableBranchTransport {
  private readonly channels = new Map<string, Channel>();
  private readonly opening = new Map<string, Promise<Channel | { refused: string }>>();
  private readonly idleMs: number;
  private readonly maxChannels: number;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: GrpcBranchTransportOptions = {}) {
    this.idleMs = opts.idleMs ?? 60_000;
    this.maxChannels = opts.maxChannels ?? 1024;
  }

  /** Channels open now (for tests and metrics). */
  get openChannels(): number {
    return this.channels.size;
  }

  /** Performs one branch call. Never rejects: refusals, deadlines and transport failures are `error` outcomes. */
  async call(req: BranchRequest): Promise<BranchOutcome> {
    if (req.url === '') return { kind: 'success' };
    const url = parseGrpcUrl(req.url);
    if (!url) return { kind: 'error', detail: `not a gRPC branch url (host:port/package.Service/Method): ${req.url}` };
    if (this.closed) return { kind: 'error', detail: 'gRPC branch transport is closed' };

    let metadata: Metadata;
    try {
      metadata = this.metadataOf(req);
    } catch (err) {
      return { kind: 'error', detail: `cannot send as gRPC metadata: ${(err as Error).message}` };
    }
    const bytes = payloadBytes(req);
    // The workflow's resume callback is `workflow.Workflow/Execute(WorkflowData)` (DTM wraps the input).
    const body = req.transType === 'workflow' ? workflowDataMessage(bytes) : bytes;

    const channel = await this.channelFor(url);
    if ('refused' in channel) return { kind: 'error', detail: channel.refused };
    channel.inflight++;
    channel.lastUsed = Date.now();
    try {
      return await new Promise<BranchOutcome>((resolve) => {
        channel.client.makeUnaryRequest(
          url.method,
          identity,
          identity,
          body,
          metadata,
          { deadline: Date.now() + req.timeoutMs },
          (err: ServiceError | null) => {
            resolve(err ? classifyGrpc(err.code, err.details ?? err.message) : { kind: 'success' });
          },
        );
      });
    } finally {
      channel.inflight--;
      channel.lastUsed = Date.now();
    }
  }

  /** Closes every channel; calls still in flight end CANCELLED. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    await Promise.allSettled(this.opening.values());
    for (const c of this.channels.values()) c.client.close();
    this.channels.clear();
  }

  private metadataOf(req: BranchRequest): Metadata {
    const md = new Metadata();
    md.set(DTM_GRPC_METADATA.gid, req.gid);
    md.set(DTM_GRPC_METADATA.transType, req.transType);
    md.set(DTM_GRPC_METADATA.branchId, req.branchId);
    md.set(DTM_GRPC_METADATA.op, req.op);
    md.set(DTM_GRPC_METADATA.dtm, this.opts.dtmAddress ?? '');
    // Branch headers (and the W3C traceparent) ride as metadata, as DTM sends `branch_headers` (names lower-cased).
    for (const name in req.headers) {
      const key = name.toLowerCase();
      const value = req.headers[name]!;
      md.set(key, key.endsWith('-bin') ? Buffer.from(value, 'base64') : value);
    }
    return md;
  }

  private async channelFor(url: GrpcUrl): Promise<Channel | { refused: string }> {
    const known = this.channels.get(url.target);
    if (known) return known;
    // Concurrent first calls to one target share one channel (and one connect-time check).
    let pending = this.opening.get(url.target);
    if (!pending) {
      pending = this.open(url).finally(() => this.opening.delete(url.target));
      this.opening.set(url.target, pending);
    }
    return pending;
  }

  private async open(url: GrpcUrl): Promise<Channel | { refused: string }> {
    let target = url.target;
    const options: ChannelOptions = { ...CHANNEL_OPTIONS };
    if (this.opts.connectTo) {
      const decided = await this.opts.connectTo(url);
      if ('refused' in decided) return decided;
      if (decided.target !== url.target) {
        target = decided.target;
        // The RM still sees the name it was addressed by (virtual hosts, TLS later).
        options['grpc.default_authority'] = `${url.host}:${url.port}`;
      }
    }
    if (this.closed) return { refused: 'gRPC branch transport is closed' };
    this.evictFor(1);
    const channel: Channel = {
      client: new Client(target, credentials.createInsecure(), options),
      lastUsed: Date.now(),
      inflight: 0,
    };
    // Refused targets are not cached: a policy change or a DNS change applies to the next call.
    this.channels.set(url.target, channel);
    this.startSweeper();
    return channel;
  }

  /** Makes room for `n` more channels by closing the least recently used idle ones. */
  private evictFor(n: number): void {
    if (this.channels.size + n <= this.maxChannels) return;
    const idle = [...this.channels.entries()].filter(([, c]) => c.inflight === 0);
    idle.sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [target, c] of idle.slice(0, this.channels.size + n - this.maxChannels)) {
      c.client.close();
      this.channels.delete(target);
    }
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(this.idleMs / 2)));
    this.sweeper.unref();
  }

  /** Closes the channels nobody used for `idleMs`; stops sweeping when none is left. */
  private sweep(): void {
    const cutoff = Date.now() - this.idleMs;
    for (const [target, c] of this.channels) {
      if (c.inflight === 0 && c.lastUsed <= cutoff) {
        c.client.close();
        this.channels.delete(target);
      }
    }
    if (this.channels.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }
}

/** An address a name resolved to, as `dns.lookup` (and an outbound policy's `resolveAllowed`) answer it. */
export interface ResolvedTarget {
  readonly address: string;
  readonly family: number;
}

/**
 * A {@link GrpcBranchTransportOptions.connectTo} that dials the first address `resolve` answers for the url's host
 * and port, e.g. `(h, p) => policy.resolveAllowed(h, p)` of an outbound policy: the channel then connects to an
 * address that was checked, never to one resolved again behind the check. A rejection refuses the call with its
 * message; the channel is re-resolved when it is reopened after being idle.
 */
export const connectToResolved =
  (resolve: (host: string, port: number) => Promise<readonly ResolvedTarget[]>) =>
  async (url: GrpcUrl): Promise<{ readonly target: string } | { readonly refused: string }> => {
    const host = url.host.startsWith('[') ? url.host.slice(1, -1) : url.host;
    try {
      const [first] = await resolve(host, url.port);
      if (!first) return { refused: `${host} resolved to no address` };
      return {
        target: first.family === 6 ? `ipv6:[${first.address}]:${url.port}` : `ipv4:${first.address}:${url.port}`,
      };
    } catch (err) {
      return { refused: err instanceof Error ? err.message : String(err) };
    }
  };
