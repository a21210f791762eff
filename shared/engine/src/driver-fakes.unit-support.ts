/* eslint-disable @typescript-eslint/require-await -- in-memory fakes of async ports answer at once */
import {
  DEFAULT_OPTIONS,
  sagaBranchId,
  type BranchCall,
  type BranchDef,
  type BranchOutcome,
  type Policy,
  type TransDefinition,
  type TxEvent,
} from '@dtm-ts/domain';
import {
  NO_STREAM,
  VersionConflict,
  type BranchRequest,
  type BranchTransport,
  type Clock,
  type EventLog,
  type PassLease,
  type PassScheduler,
  type ProjectingLog,
  type Projection,
} from '@dtm-ts/ports';
import { Driver, type DriverDeps } from './driver';

/** In-memory ports for driver tests: a log, a scheduler, a lease and a scripted RM. */

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
export const policy: Policy = { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 60 };

/** A saga of `n` steps (`http://rm/a<i>`, `http://rm/c<i>`), as a submit carries it. */
export const sagaOf = (
  gid: string,
  n: number,
  ordering: TransDefinition['ordering'] = { concurrent: false, orders: {} },
): { definition: TransDefinition; branches: BranchDef[] } => {
  const steps = Array.from({ length: n }, (_, i) => ({ action: `http://rm/a${i}`, compensate: `http://rm/c${i}` }));
  return {
    definition: {
      gid,
      transType: 'saga',
      protocol: 'http',
      steps,
      payloads: steps.map(() => ''),
      customData: '',
      queryPrepared: '',
      options: DEFAULT_OPTIONS,
      ordering,
      delayS: 0,
    },
    branches: steps.flatMap((s, i): BranchDef[] => [
      { branchId: sagaBranchId(i), op: 'compensate', url: s.compensate, data: '' },
      { branchId: sagaBranchId(i), op: 'action', url: s.action, data: '' },
    ]),
  };
};

/** An event log in memory; `beforeAppend` runs first on every append (to slip in another writer's events). */
export class MemoryLog implements EventLog {
  readonly streams = new Map<string, TxEvent[]>();
  appends = 0;
  beforeAppend?: (gid: string, events: readonly TxEvent[]) => void;

  async read(gid: string): Promise<{ events: TxEvent[]; version: number }> {
    const events = [...(this.streams.get(gid) ?? [])];
    return { events, version: events.length - 1 };
  }

  async append(gid: string, events: readonly TxEvent[], expected: number): Promise<number> {
    this.beforeAppend?.(gid, events);
    const stream = this.streams.get(gid) ?? [];
    const actual = stream.length === 0 ? NO_STREAM : stream.length - 1;
    if (actual !== expected) throw new VersionConflict(gid, expected, actual);
    stream.push(...events);
    this.streams.set(gid, stream);
    this.appends++;
    return stream.length - 1;
  }

  /** Another writer's append, at whatever revision the stream is. */
  push(gid: string, ...events: TxEvent[]): void {
    const stream = this.streams.get(gid) ?? [];
    stream.push(...events);
    this.streams.set(gid, stream);
  }

  types(gid: string): string[] {
    return (this.streams.get(gid) ?? []).map((e) => e.type);
  }
}

/**
 * A log that projects its own appends (ProjectingLog): records what each append carried; `onEndLease` drops the
 * lease, `onTakeLease` takes it (a new stream's append, as append-7.lua does).
 */
export class ProjectingMemoryLog extends MemoryLog implements ProjectingLog {
  readonly projections: (Projection | null)[] = [];
  onEndLease?: (gid: string) => void;
  onTakeLease?: (gid: string, token: string) => void;

  async appendProjected(
    gid: string,
    events: readonly TxEvent[],
    expected: number,
    projection: Projection | null,
  ): Promise<number> {
    const version = await this.append(gid, events, expected);
    this.projections.push(projection);
    if (projection?.endLease) this.onEndLease?.(gid);
    if (projection?.takeLease && expected === -1) this.onTakeLease?.(gid, projection.takeLease.token);
    return version;
  }
}

export class RecordingScheduler implements PassScheduler {
  readonly passes: { gid: string; at: number; key: string }[] = [];
  async schedule(gid: string, at: number, key: string): Promise<void> {
    this.passes.push({ gid, at, key });
  }
}

/** A lease in memory; `steal` hands it to someone else, as a lapse and another driver's acquire would. */
export class MemoryLease implements PassLease {
  private holder = new Map<string, string>();
  private n = 0;
  acquires = 0;
  renewals = 0;
  releases = 0;

  async acquire(gid: string): Promise<{ token: string } | { heldForMs: number }> {
    this.acquires++;
    if (this.holder.has(gid)) return { heldForMs: 1000 };
    const token = `t${++this.n}`;
    this.holder.set(gid, token);
    return { token };
  }

  async renew(gid: string, token: string): Promise<boolean> {
    this.renewals++;
    return this.holder.get(gid) === token;
  }

  async release(gid: string, token: string): Promise<void> {
    this.releases++;
    if (this.holder.get(gid) === token) this.holder.delete(gid);
  }

  /** Taken with an append (Projection.takeLease), not through `acquire`. */
  take(gid: string, token: string): void {
    this.holder.set(gid, token);
  }

  steal(gid: string): void {
    this.holder.set(gid, 'someone-else');
  }

  /** The lease lapses: nobody holds it until the next acquire. */
  expire(gid: string): void {
    this.holder.delete(gid);
  }
}

/** What one call of the scripted RM answers; may wait or look at the log first. */
export type Reply = (req: BranchRequest) => BranchOutcome | Promise<BranchOutcome>;

/** An RM whose replies are scripted per URL (default: success), recording every call in order. */
export class ScriptedRm implements BranchTransport {
  readonly calls: BranchCall[] = [];
  readonly replies = new Map<string, Reply>();

  async call(req: BranchRequest): Promise<BranchOutcome> {
    this.calls.push({ branchId: req.branchId, op: req.op, url: req.url, data: req.data });
    return (await this.replies.get(req.url)?.(req)) ?? { kind: 'success' };
  }

  urls(): string[] {
    return this.calls.map((c) => c.url);
  }
}

/** A clock that moves only when told. */
export const manualClock = (t = T0): Clock & { set(ms: number): void } => ({
  now: () => t,
  set(ms: number) {
    t = ms;
  },
});

/** A promise and the function that settles it, to hold a call open until a test lets it go. */
export const gate = <T>(): { promise: Promise<T>; open: (value: T) => void } => {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
};

export const driverWith = (overrides: Partial<DriverDeps> = {}) => {
  const log = new MemoryLog();
  const scheduler = new RecordingScheduler();
  const rm = new ScriptedRm();
  const clock = manualClock();
  const deps: DriverDeps = {
    log,
    transport: rm,
    scheduler,
    clock,
    policy,
    requestTimeoutS: 3,
    ...overrides,
  };
  return { driver: new Driver(deps), deps, log, scheduler, rm, clock };
};

/** A two-phase message with one HTTP step (`http://rm/deliver`) and its check-back (`http://rm/query`). */
export const msgOf = (gid: string): { definition: TransDefinition; branches: BranchDef[] } => ({
  definition: {
    gid,
    transType: 'msg',
    protocol: 'http',
    steps: [{ action: 'http://rm/deliver' }],
    payloads: [''],
    customData: '',
    queryPrepared: 'http://rm/query',
    options: DEFAULT_OPTIONS,
    ordering: { concurrent: false, orders: {} },
    delayS: 0,
  },
  branches: [{ branchId: sagaBranchId(0), op: 'action', url: 'http://rm/deliver', data: '' }],
});

/** Submits `saga` through the driver, as the API does. */
export const submit = (driver: Driver, saga: ReturnType<typeof sagaOf>) =>
  driver.execute(saga.definition.gid, (now) => ({
    type: 'SubmitGlobalTransaction',
    data: saga,
    metadata: { now },
  }));
