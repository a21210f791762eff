import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  anyPb,
  codePb,
  emptyPb,
  grpc,
  serverFeaturesGrpcPb,
  serverFeaturesPb,
  sharedPb,
  statusPb,
  streamsGrpcPb,
  streamsPb,
  type GrpcJs,
  type SharedPb,
  type StreamsPb,
} from './proto';
import {
  FakeStore,
  type AppendOutcome,
  type ExpectedRevision,
  type LogPosition,
  type ProposedEvent,
  type StoredEvent,
} from './store';

/** How the fake presents itself. */
export interface EsdbFakeOptions {
  /**
   * Answer ServerFeatures.GetSupportedMethods listing Streams.BatchAppend, as servers since 21.10 do, so the
   * client appends through BatchAppend. False: answer UNIMPLEMENTED, as a 20.x server, so the client uses
   * Streams.Append. Default true.
   */
  readonly batchAppend?: boolean;
  /** Largest append in bytes of data and metadata (the server's MaxAppendSize). Default 1 MiB, as the server's. */
  readonly maxAppendSize?: number;
  /** Write a few `$`-streams first, as a real server's `$all` starts with system events. Default true. */
  readonly systemEvents?: boolean;
}

/** A running fake. */
export interface EsdbFake {
  /** `esdb://127.0.0.1:<port>?tls=false` */
  readonly url: string;
  readonly port: number;
  /** The fake's storage, for tests that look behind the client. */
  readonly store: FakeStore;
  /** Ends every call and closes the port. */
  stop(): Promise<void>;
}

type Uuid = SharedPb.UUID;
type ReadOptions = StreamsPb.ReadReq.Options;

const FEATURES_VERSION = '23.10.0-dtm-ts-fake';
const DEFAULT_FILTER_WINDOW = 32;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

const uuidToString = (id: Uuid | undefined): string => {
  if (!id) return randomUUID();
  if (id.hasString()) return id.getString();
  const s = id.getStructured();
  if (!s) return randomUUID();
  const hex = (v: string): string => BigInt.asUintN(64, BigInt(v)).toString(16).padStart(16, '0');
  const h = hex(s.getMostSignificantBits()) + hex(s.getLeastSignificantBits());
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

const uuidMessage = (id: string, structured: boolean): Uuid => {
  const uuid = new sharedPb.UUID();
  if (!structured) return uuid.setString(id);
  const h = id.replaceAll('-', '');
  const s = new sharedPb.UUID.Structured();
  s.setMostSignificantBits(BigInt.asIntN(64, BigInt(`0x${h.slice(0, 16)}`)).toString());
  s.setLeastSignificantBits(BigInt.asIntN(64, BigInt(`0x${h.slice(16)}`)).toString());
  return uuid.setStructured(s);
};

const streamName = (id: SharedPb.StreamIdentifier | undefined): string =>
  id ? fromUtf8.decode(id.getStreamName_asU8()) : '';

const streamIdentifier = (name: string): SharedPb.StreamIdentifier =>
  new sharedPb.StreamIdentifier().setStreamName(utf8.encode(name));

/** A proposed message of Append or BatchAppend (same fields, different classes). */
interface ProposedMessage {
  getId(): Uuid | undefined;
  getMetadataMap(): { get(key: string): string | undefined };
  getData_asU8(): Uint8Array;
  getCustomMetadata_asU8(): Uint8Array;
}

class BadRequest extends Error {}

const proposed = (m: ProposedMessage): ProposedEvent => {
  const type = m.getMetadataMap().get('type');
  const contentType = m.getMetadataMap().get('content-type');
  // The server rejects events without these two (RequiredMetadataPropertyMissing).
  if (!type) throw new BadRequest('required metadata property type is missing');
  if (!contentType) throw new BadRequest('required metadata property content-type is missing');
  return {
    id: uuidToString(m.getId()),
    type,
    contentType,
    data: m.getData_asU8(),
    customMetadata: m.getCustomMetadata_asU8(),
  };
};

const recordedEvent = (e: StoredEvent, structuredIds: boolean): StreamsPb.ReadResp => {
  const rec = new streamsPb.ReadResp.ReadEvent.RecordedEvent();
  rec.setId(uuidMessage(e.id, structuredIds));
  rec.setStreamIdentifier(streamIdentifier(e.stream));
  rec.setStreamRevision(e.revision.toString());
  rec.setPreparePosition(e.position.prepare.toString());
  rec.setCommitPosition(e.position.commit.toString());
  const meta = rec.getMetadataMap();
  meta.set('type', e.type);
  meta.set('content-type', e.contentType);
  meta.set('created', e.created.toString());
  rec.setCustomMetadata(e.customMetadata);
  rec.setData(e.data);
  const read = new streamsPb.ReadResp.ReadEvent();
  read.setEvent(rec);
  read.setCommitPosition(e.position.commit.toString());
  return new streamsPb.ReadResp().setEvent(read);
};

const checkpointMessage = (p: LogPosition): StreamsPb.ReadResp =>
  new streamsPb.ReadResp().setCheckpoint(
    new streamsPb.ReadResp.Checkpoint().setCommitPosition(p.commit.toString()).setPreparePosition(p.prepare.toString()),
  );

/** Which events of `$all` a filtered read or subscription passes, and how often it reports a checkpoint. */
interface AllFilter {
  matches(e: StoredEvent): boolean;
  /** Events scanned between two checkpoint messages. */
  readonly checkpointEvery: number;
}

const parseFilter = (options: ReadOptions): AllFilter | null => {
  const f = options.getFilter();
  if (!f) return null;
  const byStream = f.hasStreamIdentifier();
  const expr = byStream ? f.getStreamIdentifier() : f.getEventType();
  if (!expr) throw new BadRequest('filter without expression');
  const prefixes = expr.getPrefixList();
  const regex = expr.getRegex() ? new RegExp(expr.getRegex()) : null;
  const window = f.hasMax() ? f.getMax() : DEFAULT_FILTER_WINDOW;
  return {
    matches: (e) => {
      const subject = byStream ? e.stream : e.type;
      if (prefixes.length) return prefixes.some((p) => subject.startsWith(p));
      return regex ? regex.test(subject) : true;
    },
    checkpointEvery: Math.max(1, window * Math.max(1, f.getCheckpointintervalmultiplier())),
  };
};

const expectedOf = (
  c: { kind: 'revision'; value: string } | { kind: 'no_stream' | 'any' | 'stream_exists' } | null,
): ExpectedRevision => {
  if (!c) throw new BadRequest('no expected revision');
  return c.kind === 'revision' ? { kind: 'revision', revision: BigInt(c.value) } : { kind: c.kind };
};

const appendExpected = (o: StreamsPb.AppendReq.Options): ExpectedRevision =>
  expectedOf(
    o.hasRevision()
      ? { kind: 'revision', value: o.getRevision() }
      : o.hasNoStream()
        ? { kind: 'no_stream' }
        : o.hasAny()
          ? { kind: 'any' }
          : o.hasStreamExists()
            ? { kind: 'stream_exists' }
            : null,
  );

const batchExpected = (o: StreamsPb.BatchAppendReq.Options): ExpectedRevision =>
  expectedOf(
    o.hasStreamPosition()
      ? { kind: 'revision', value: o.getStreamPosition() }
      : o.hasNoStream()
        ? { kind: 'no_stream' }
        : o.hasAny()
          ? { kind: 'any' }
          : o.hasStreamExists()
            ? { kind: 'stream_exists' }
            : null,
  );

const grpcError = (code: GrpcJs.status, details: string, meta: Record<string, string> = {}): GrpcJs.ServiceError => {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(meta)) metadata.set(k, v);
  return Object.assign(new Error(details), { code, details, metadata });
};

/** Writes to a server stream, waiting while its buffer is full; false once the call is gone. */
const writeTo = async <T>(call: GrpcJs.ServerWritableStream<unknown, T>, message: T): Promise<boolean> => {
  if (call.cancelled || call.destroyed) return false;
  if (!call.write(message)) {
    const waiting = new AbortController();
    const { signal } = waiting;
    await Promise.race(['drain', 'cancelled', 'close'].map((name) => once(call, name, { signal }))).catch(
      () => undefined,
    );
    waiting.abort();
  }
  return !call.cancelled && !call.destroyed;
};

/**
 * The RPCs: ServerFeatures.GetSupportedMethods, Streams.Append, Streams.BatchAppend, Streams.Read (streams and
 * `$all`, reads and catch-up subscriptions, with filters, checkpoints and caught-up).
 */
export class EsdbFakeServer {
  readonly store: FakeStore;
  private readonly server: GrpcJs.Server;
  /** Aborted on stop: ends every subscription. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: EsdbFakeOptions = {}) {
    this.store = new FakeStore(options.maxAppendSize ?? 1024 * 1024);
    if (options.systemEvents ?? true) this.writeSystemEvents();
    this.server = new grpc.Server({
      // The client pings every 10 s by default, with or without calls in flight; accept that.
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 1_000,
    });
    this.server.addService(serverFeaturesGrpcPb.ServerFeaturesService, {
      getSupportedMethods: this.getSupportedMethods,
    });
    this.server.addService(streamsGrpcPb.StreamsService, {
      read: (call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>) => {
        this.read(call).catch((err: unknown) => this.fail(call, err));
      },
      append: this.append,
      batchAppend: this.batchAppend,
      delete: (_call: unknown, cb: GrpcJs.sendUnaryData<unknown>) =>
        cb(grpcError(grpc.status.UNIMPLEMENTED, 'the fake does not delete streams')),
      tombstone: (_call: unknown, cb: GrpcJs.sendUnaryData<unknown>) =>
        cb(grpcError(grpc.status.UNIMPLEMENTED, 'the fake does not tombstone streams')),
    });
  }

  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await new Promise<void>((resolve) => {
      // Calls still open (batch appends, subscriptions) would keep a graceful shutdown waiting: cut them.
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 200);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private writeSystemEvents(): void {
    const json = (o: unknown): Uint8Array => utf8.encode(JSON.stringify(o));
    const system = (stream: string, type: string, data: unknown): void => {
      this.store.append(stream, { kind: 'any' }, [
        { id: randomUUID(), type, contentType: 'application/json', data: json(data), customMetadata: new Uint8Array() },
      ]);
    };
    system('$$$settings', '$metadata', { $acl: {} });
    system('$settings', 'update-default-acl', { $userStreamAcl: {}, $systemStreamAcl: {} });
    system('$stats-127.0.0.1:2113', '$statsCollected', { 'proc-startTime': new Date().toISOString() });
  }

  private readonly getSupportedMethods = (
    _call: GrpcJs.ServerUnaryCall<unknown, unknown>,
    cb: GrpcJs.sendUnaryData<InstanceType<typeof serverFeaturesPb.SupportedMethods>>,
  ): void => {
    if (!(this.options.batchAppend ?? true)) {
      cb(grpcError(grpc.status.UNIMPLEMENTED, 'server features are not supported'));
      return;
    }
    const methods = new serverFeaturesPb.SupportedMethods();
    methods.setEventStoreServerVersion(FEATURES_VERSION);
    const add = (service: string, method: string, features: string[] = []): void => {
      methods.addMethods(
        new serverFeaturesPb.SupportedMethod().setServiceName(service).setMethodName(method).setFeaturesList(features),
      );
    };
    add('event_store.client.server_features.ServerFeatures', 'GetSupportedMethods');
    for (const m of ['Read', 'Append', 'BatchAppend']) add('event_store.client.streams.Streams', m);
    cb(null, methods);
  };

  private fail(call: GrpcJs.ServerWritableStream<unknown, unknown>, err: unknown): void {
    if (call.cancelled || call.destroyed) return;
    const bad = err instanceof BadRequest;
    // grpc-js turns an error event into the call's status and ends it.
    call.emit(
      'error',
      grpcError(
        bad ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL,
        err instanceof Error ? err.message : String(err),
      ),
    );
  }

  /** Appends and answers as Streams.Append does: success, or wrong expected version in the response body. */
  private readonly append = (
    call: GrpcJs.ServerReadableStream<StreamsPb.AppendReq, StreamsPb.AppendResp>,
    cb: GrpcJs.sendUnaryData<StreamsPb.AppendResp>,
  ): void => {
    let options: StreamsPb.AppendReq.Options | undefined;
    const messages: StreamsPb.AppendReq.ProposedMessage[] = [];
    call.on('data', (req: StreamsPb.AppendReq) => {
      if (req.hasOptions()) options = req.getOptions();
      const m = req.getProposedMessage();
      if (m) messages.push(m);
    });
    call.on('error', () => undefined);
    call.on('end', () => {
      try {
        if (!options) throw new BadRequest('append without options');
        const stream = streamName(options.getStreamIdentifier());
        const expected = appendExpected(options);
        const outcome = this.store.append(stream, expected, messages.map(proposed));
        if (!outcome.ok && outcome.reason === 'too-large') {
          cb(
            grpcError(grpc.status.INVALID_ARGUMENT, `maximum append size of ${outcome.maxAppendSize} exceeded`, {
              exception: 'maximum-append-size-exceeded',
              'maximum-append-size': String(outcome.maxAppendSize),
            }),
          );
          return;
        }
        cb(null, appendResponse(outcome, expected));
      } catch (err) {
        cb(grpcError(err instanceof BadRequest ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, String(err)));
      }
    });
  };

  /**
   * Streams.BatchAppend: one long-lived bidirectional call carries many appends, told apart by correlation id;
   * an append may span several requests (the last has `is_final`). Errors travel in the response as a
   * google.rpc.Status whose details pack the reason (WrongExpectedVersion, MaximumAppendSizeExceeded).
   */
  private readonly batchAppend = (
    call: GrpcJs.ServerDuplexStream<StreamsPb.BatchAppendReq, StreamsPb.BatchAppendResp>,
  ): void => {
    const open = new Map<
      string,
      { options: StreamsPb.BatchAppendReq.Options | undefined; messages: StreamsPb.BatchAppendReq.ProposedMessage[] }
    >();
    call.on('data', (req: StreamsPb.BatchAppendReq) => {
      const correlation = req.getCorrelationId();
      const key = uuidToString(correlation);
      const batch = open.get(key) ?? { options: undefined, messages: [] };
      if (req.hasOptions()) batch.options = req.getOptions();
      batch.messages.push(...req.getProposedMessagesList());
      if (!req.getIsFinal()) {
        open.set(key, batch);
        return;
      }
      open.delete(key);
      const resp = new streamsPb.BatchAppendResp();
      if (correlation) resp.setCorrelationId(correlation);
      try {
        if (!batch.options) throw new BadRequest('batch append without options');
        const stream = streamName(batch.options.getStreamIdentifier());
        resp.setStreamIdentifier(streamIdentifier(stream));
        const expected = batchExpected(batch.options);
        setBatchExpected(resp, expected);
        const outcome = this.store.append(stream, expected, batch.messages.map(proposed));
        if (outcome.ok) {
          const success = new streamsPb.BatchAppendResp.Success();
          if (outcome.revision === null) success.setNoStream(new emptyPb.Empty());
          else success.setCurrentRevision(outcome.revision.toString());
          if (outcome.position) success.setPosition(allPosition(outcome.position));
          else success.setNoPosition(new emptyPb.Empty());
          resp.setSuccess(success);
        } else if (outcome.reason === 'wrong-expected-version') {
          const details = new sharedPb.WrongExpectedVersion();
          if (outcome.current === null) details.setCurrentNoStream(new emptyPb.Empty());
          else details.setCurrentStreamRevision(outcome.current.toString());
          if (expected.kind === 'revision') details.setExpectedStreamPosition(expected.revision.toString());
          else if (expected.kind === 'no_stream') details.setExpectedNoStream(new emptyPb.Empty());
          else if (expected.kind === 'stream_exists') details.setExpectedStreamExists(new emptyPb.Empty());
          else details.setExpectedAny(new emptyPb.Empty());
          resp.setError(
            status(
              codePb.Code.FAILED_PRECONDITION,
              'wrong expected version',
              details.serializeBinary(),
              'event_store.client.WrongExpectedVersion',
            ),
          );
        } else {
          const details = new sharedPb.MaximumAppendSizeExceeded().setMaxappendsize(outcome.maxAppendSize);
          resp.setError(
            status(
              codePb.Code.INVALID_ARGUMENT,
              'maximum append size exceeded',
              details.serializeBinary(),
              'event_store.client.MaximumAppendSizeExceeded',
            ),
          );
        }
      } catch (err) {
        resp.setError(
          status(
            codePb.Code.INVALID_ARGUMENT,
            err instanceof Error ? err.message : String(err),
            new sharedPb.BadRequest().setMessage(String(err)).serializeBinary(),
            'event_store.client.BadRequest',
          ),
        );
      }
      call.write(resp);
    });
    call.on('error', () => undefined);
    call.on('end', () => call.end());
  };

  /** Streams.Read: a read or a catch-up subscription, of one stream or of `$all`. */
  private async read(call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>): Promise<void> {
    const options = call.request.getOptions();
    if (!options) throw new BadRequest('read without options');
    const structuredIds = options.getUuidOption()?.hasStructured() ?? false;
    const backwards = options.getReadDirection() === streamsPb.ReadReq.Options.ReadDirection.BACKWARDS;
    const subscription = options.hasSubscription();
    const count = options.hasCount() ? BigInt(options.getCount()) : BigInt(Number.MAX_SAFE_INTEGER);

    const streamOptions = options.getStream();
    if (streamOptions) {
      const name = streamName(streamOptions.getStreamIdentifier());
      if (subscription) return this.subscribeStream(call, name, streamOptions, structuredIds);
      return this.readStream(call, name, streamOptions, backwards, count, structuredIds);
    }
    const allOptions = options.getAll();
    if (!allOptions) throw new BadRequest('read of neither a stream nor $all');
    const filter = parseFilter(options);
    if (subscription) return this.subscribeAll(call, allOptions, filter, structuredIds);
    return this.readAll(call, allOptions, filter, backwards, count, structuredIds);
  }

  private async readStream(
    call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>,
    name: string,
    o: StreamsPb.ReadReq.Options.StreamOptions,
    backwards: boolean,
    count: bigint,
    structuredIds: boolean,
  ): Promise<void> {
    const events = this.store.stream(name);
    if (!events) {
      const notFound = new streamsPb.ReadResp.StreamNotFound().setStreamIdentifier(streamIdentifier(name));
      await writeTo(call, new streamsPb.ReadResp().setStreamNotFound(notFound));
      call.end();
      return;
    }
    const last = events.length - 1;
    const from = o.hasRevision()
      ? Number(o.getRevision())
      : o.hasEnd()
        ? backwards
          ? last
          : last + 1
        : backwards
          ? last
          : 0;
    let sent = 0n;
    for (let i = from; i >= 0 && i <= last && sent < count; i += backwards ? -1 : 1, sent++) {
      if (!(await writeTo(call, recordedEvent(events[i]!, structuredIds)))) return;
    }
    call.end();
  }

  private async readAll(
    call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>,
    o: StreamsPb.ReadReq.Options.AllOptions,
    filter: AllFilter | null,
    backwards: boolean,
    count: bigint,
    structuredIds: boolean,
  ): Promise<void> {
    const all = this.store.all;
    const position = o.getPosition();
    const at = position ? allPositionOf(position) : null;
    // Forwards from a position includes the event at it; backwards starts before it.
    let i: number;
    if (backwards) i = at ? this.store.indexAtOrAfter(at) - 1 : o.hasStart() ? -1 : all.length - 1;
    else i = at ? this.store.indexAtOrAfter(at) : o.hasEnd() ? all.length : 0;
    let sent = 0n;
    for (; i >= 0 && i < all.length && sent < count; i += backwards ? -1 : 1) {
      const e = all[i]!;
      if (filter && !filter.matches(e)) continue;
      if (!(await writeTo(call, recordedEvent(e, structuredIds)))) return;
      sent++;
    }
    call.end();
  }

  private async subscribeStream(
    call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>,
    name: string,
    o: StreamsPb.ReadReq.Options.StreamOptions,
    structuredIds: boolean,
  ): Promise<void> {
    // A subscription starts after the revision it is given; from the end, with the next event appended.
    let next = o.hasRevision()
      ? Number(o.getRevision()) + 1
      : o.hasEnd()
        ? Number(this.store.lastRevision(name) ?? -1n) + 1
        : 0;
    await this.follow(call, () => {
      const events = this.store.stream(name) ?? [];
      const out: StreamsPb.ReadResp[] = [];
      for (; next < events.length; next++) out.push(recordedEvent(events[next]!, structuredIds));
      return out;
    });
  }

  private async subscribeAll(
    call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>,
    o: StreamsPb.ReadReq.Options.AllOptions,
    filter: AllFilter | null,
    structuredIds: boolean,
  ): Promise<void> {
    const position = o.getPosition();
    // A subscription starts after the position it is given.
    let next = position ? this.store.indexAfter(allPositionOf(position)) : o.hasEnd() ? this.store.all.length : 0;
    let scanned = 0;
    await this.follow(call, (caughtUp) => {
      const all = this.store.all;
      const out: StreamsPb.ReadResp[] = [];
      for (; next < all.length; next++) {
        const e = all[next]!;
        if (!filter || filter.matches(e)) out.push(recordedEvent(e, structuredIds));
        if (filter && ++scanned % filter.checkpointEvery === 0) out.push(checkpointMessage(e.position));
      }
      // Reaching the end while catching up: say how far the filter looked, then that it caught up.
      const last = all.at(-1);
      if (caughtUp && filter && last) out.push(checkpointMessage(last.position));
      return out;
    });
  }

  /**
   * Runs a catch-up subscription: confirmation, what is already there, caught-up, then each new append as it
   * comes, until the client cancels or the server stops. `pending(caughtUp)` returns the messages due now and
   * advances its cursor; `caughtUp` is true on the call that reaches the end for the first time.
   */
  private async follow(
    call: GrpcJs.ServerWritableStream<StreamsPb.ReadReq, StreamsPb.ReadResp>,
    pending: (caughtUp: boolean) => StreamsPb.ReadResp[],
  ): Promise<void> {
    const ended = new AbortController();
    const end = (): void => ended.abort();
    call.on('cancelled', end);
    call.on('close', end);
    this.stopping.signal.addEventListener('abort', end, { once: true });
    try {
      const confirmation = new streamsPb.ReadResp.SubscriptionConfirmation().setSubscriptionId(randomUUID());
      if (!(await writeTo(call, new streamsPb.ReadResp().setConfirmation(confirmation)))) return;
      let caughtUp = false;
      while (!ended.signal.aborted) {
        // Take the batch synchronously, so no append slips between reading the log and waiting for the next one.
        const wait = this.store.nextAppend(ended.signal);
        const messages = pending(!caughtUp);
        for (const m of messages) if (!(await writeTo(call, m))) return;
        if (!caughtUp) {
          caughtUp = true;
          if (!(await writeTo(call, new streamsPb.ReadResp().setCaughtUp(new streamsPb.ReadResp.CaughtUp())))) return;
        }
        await wait;
      }
    } finally {
      call.off('cancelled', end);
      call.off('close', end);
      this.stopping.signal.removeEventListener('abort', end);
      if (!call.cancelled && !call.destroyed) call.end();
    }
  }
}

const allPositionOf = (p: { getCommitPosition(): string; getPreparePosition(): string }): LogPosition => ({
  commit: BigInt(p.getCommitPosition()),
  prepare: BigInt(p.getPreparePosition()),
});

const allPosition = (p: LogPosition): SharedPb.AllStreamPosition =>
  new sharedPb.AllStreamPosition().setCommitPosition(p.commit.toString()).setPreparePosition(p.prepare.toString());

const status = (
  code: number,
  message: string,
  details: Uint8Array,
  typeName: string,
): InstanceType<typeof statusPb.Status> => {
  const any = new anyPb.Any();
  any.pack(details, typeName);
  return new statusPb.Status().setCode(code).setMessage(message).setDetails(any);
};

const setBatchExpected = (resp: StreamsPb.BatchAppendResp, expected: ExpectedRevision): void => {
  if (expected.kind === 'revision') resp.setStreamPosition(expected.revision.toString());
  else if (expected.kind === 'no_stream') resp.setNoStream(new emptyPb.Empty());
  else if (expected.kind === 'stream_exists') resp.setStreamExists(new emptyPb.Empty());
  else resp.setAny(new emptyPb.Empty());
};

const appendResponse = (outcome: AppendOutcome, expected: ExpectedRevision): StreamsPb.AppendResp => {
  const resp = new streamsPb.AppendResp();
  if (outcome.ok) {
    const success = new streamsPb.AppendResp.Success();
    if (outcome.revision === null) success.setNoStream(new sharedPb.Empty());
    else success.setCurrentRevision(outcome.revision.toString());
    if (outcome.position) {
      success.setPosition(
        new streamsPb.AppendResp.Position()
          .setCommitPosition(outcome.position.commit.toString())
          .setPreparePosition(outcome.position.prepare.toString()),
      );
    } else success.setNoPosition(new sharedPb.Empty());
    return resp.setSuccess(success);
  }
  const wrong = new streamsPb.AppendResp.WrongExpectedVersion();
  if (!outcome.ok && outcome.reason === 'wrong-expected-version') {
    if (outcome.current === null) wrong.setCurrentNoStream(new sharedPb.Empty());
    else wrong.setCurrentRevision(outcome.current.toString());
  }
  if (expected.kind === 'revision') wrong.setExpectedRevision(expected.revision.toString());
  else if (expected.kind === 'no_stream') wrong.setExpectedNoStream(new sharedPb.Empty());
  else if (expected.kind === 'stream_exists') wrong.setExpectedStreamExists(new sharedPb.Empty());
  else wrong.setExpectedAny(new sharedPb.Empty());
  return resp.setWrongExpectedVersion(wrong);
};
