import { randomUUID } from 'node:crypto';
import {
  decide,
  fold,
  plan,
  type ActiveTransaction,
  type BranchCall,
  type BranchOutcome,
  type GlobalTransaction,
  type Policy,
  type TxCommand,
  type TxEvent,
} from '@dtm-ts/domain';
import {
  NO_STREAM,
  type BranchTransport,
  type Clock,
  type EventLog,
  type PassLease,
  type PassScheduler,
  type ProjectingLog,
  type Projection,
} from '@dtm-ts/ports';
import { appendDecided, type Appended, type Decision, type StreamAt } from './append-decided';
import { CallsInFlight } from './calls-in-flight';
import { LeaseFence, NO_FENCE, type Fence } from './lease-fence';
import { inPassSpan, tracedEventLog, tracedProjectingLog, tracedTransport, traceFor } from './tracing';
import { tracingOn } from '@dtm-ts/telemetry';
import { immediateKey, summarize, waitKey } from './views';
import { readState } from './read-state';

export interface DriverDeps {
  readonly log: EventLog;
  readonly transport: BranchTransport;
  readonly scheduler: PassScheduler;
  readonly clock: Clock;
  readonly policy: Policy;
  /** Server default for one branch call, seconds. */
  readonly requestTimeoutS: number;
  readonly observer?: DriverObserver;
  /** One driver per transaction at a time; without it, two drivers are still correct, just wasteful. */
  readonly lease?: PassLease;
  readonly leaseTtlMs?: number;
  /** A clock that never jumps, to judge how long the lease is surely held. Default: `performance.now`. */
  readonly monotonic?: Clock;
  /** How many passes this process may run itself after a submit (0: always queue them). */
  readonly inlinePasses?: number;
  readonly onInlineError?: (gid: string, err: unknown) => void;
  /**
   * How long the read model keeps a finished transaction, ms (0: kept). Used where the log writes the read model with
   * each append (a ProjectingLog), as the projector would; the same figure the projector is given.
   */
  readonly retentionMs?: number;
}

/** How the driver records one append in the read model, where the log projects its own appends. */
interface AppendHow {
  /** The pass goes on at once after this append when its state plans calls: the next append records both. */
  readonly mayDefer?: boolean;
  /** The pass's lease, dropped with the append that finishes the transaction. */
  readonly fence?: Fence;
  /** A lease to take with the append that starts the stream; `taken` records that it was. */
  readonly take?: { readonly token: string; asked: number; taken: boolean };
}

/** A pass lease taken with the append that started the stream (see Driver.execute's `takeLease`). */
export interface TakenLease {
  readonly token: string;
  /** When the append was sent, on the driver's monotonic clock: the lease runs from no earlier than that. */
  readonly asked: number;
}

/** Hooks for metrics and logs; the driver itself stays free of both. */
export interface DriverObserver {
  onBranchResult?(gid: string, tx: GlobalTransaction, call: BranchCall, outcome: BranchOutcome, ms: number): void;
  onPass?(gid: string, result: PassResult): void;
  /** A pass threw; `error` is what {@link PassResult.failure} and the PassFailed event say. */
  onPassFailed?(gid: string, tx: GlobalTransaction, error: string, cause: unknown): void;
  /** Called after every successful append, with the state before and after. */
  onAppend?(
    gid: string,
    before: GlobalTransaction,
    after: GlobalTransaction,
    events: readonly TxEvent[],
    ms: number,
  ): void;
}

/** A transaction's stream as a driver holds it. */
export type HeldTransaction = StreamAt<GlobalTransaction>;

export interface PassOptions {
  /** The time the pass was scheduled for (see runPass). */
  readonly notBefore?: number;
  /** The state and version the caller already holds (skips a read). */
  readonly from?: HeldTransaction;
  /** W3C traceparent to continue (from the job); else the transaction's own. */
  readonly trace?: string;
  /** The lease the caller already holds (taken with the submit's append): the pass does not ask for it again. */
  readonly lease?: TakenLease;
}

/** How a pass ended. `lastOutcome` is the last non-success answer seen in the pass, if any. */
export interface PassResult {
  readonly state: GlobalTransaction;
  readonly version: number;
  readonly lastOutcome: BranchOutcome | null;
  /** True when another driver held the transaction, so this pass did nothing. */
  readonly skipped?: boolean;
  /** True when the pass lost its lease midway and stopped before its next call, leaving the rest to a new pass. */
  readonly handedOff?: boolean;
  /** The error of a pass that threw; it was recorded (PassFailed) and the next pass asked for after a backoff. */
  readonly failure?: string;
}

/**
 * The headers of a branch call. With tracing off the TM makes no spans, but a transaction that recorded its AP's
 * `traceparent` passes it on as it came, so the RM's spans still join the AP's trace; with tracing on, the call's
 * own client span goes instead (tracedTransport).
 */
const passOnTrace = (tx: ActiveTransaction): Readonly<Record<string, string>> => {
  const headers = tx.definition.options.branchHeaders;
  if (!tx.trace || tracingOn()) return headers;
  const out: Record<string, string> = { ...headers };
  out.traceparent = tx.trace;
  return out;
};

/** Longest error text a PassFailed event keeps. */
const MAX_ERROR_CHARS = 512;

/** An unexpected throwable, in one line: name, code when it has one (undici's `UND_ERR_…`), message. */
export const describeThrown = (err: unknown): string => {
  if (!(err instanceof Error)) return String(err).slice(0, MAX_ERROR_CHARS);
  const code = (err as { code?: unknown }).code;
  const text = `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
  return text.slice(0, MAX_ERROR_CHARS);
};

/**
 * Most plan steps (an append, or a wait for one call) one pass takes before it declares itself stuck.
 * A saga of MAX_BRANCHES steps takes a few thousand; only a planner bug that never settles gets near it.
 */
export const MAX_STEPS_PER_PASS = 100_000;

/** Plans that follow from a decision at once (a failure → aborting, the last success → succeed), merged into one append. */
const MAX_FOLLOW_UPS = 4;

/** The stream before its first append: what a submit of a new gid decides against. */
const NEW_STREAM: HeldTransaction = { state: fold([]), version: NO_STREAM };

/**
 * Runs the pure core against the ports: decide → append (with the expected revision) → plan → call
 * branches → append each result → … until nothing is due, then asks for the next pass.
 */
export class Driver {
  private readonly log: EventLog;
  private readonly transport: BranchTransport;
  /** The log itself where it writes the read model with each append: then the projector has nothing to redo. */
  private readonly projecting: ProjectingLog | undefined;
  private readonly inline = new Set<Promise<unknown>>();
  /** Judges how long a lease is surely held: a clock that never jumps. */
  private readonly monotonic: Clock;
  /** How long a pass lease lasts when not renewed. */
  private readonly leaseTtlMs: number;

  constructor(private readonly deps: DriverDeps) {
    this.monotonic = deps.monotonic ?? { now: () => performance.now() };
    this.leaseTtlMs = deps.leaseTtlMs ?? 10_000;
    this.log = tracedEventLog(deps.log);
    this.projecting = 'appendProjected' in deps.log ? tracedProjectingLog(deps.log as ProjectingLog) : undefined;
    this.transport = tracedTransport(deps.transport);
  }

  /**
   * Decides a command against the current stream and appends the outcome, re-reading and
   * re-deciding on conflicts. Rejections of `decide` (TxRejected) propagate untouched.
   */
  async execute(
    gid: string,
    command: (now: number) => TxCommand,
    opts: { assumeNew?: boolean; takeLease?: boolean } = {},
  ): Promise<{ state: GlobalTransaction; version: number; appended: number; lease?: TakenLease }> {
    // A submit about to be driven inline takes the pass lease with the append that starts its stream: one round
    // trip fewer than the pass's own acquire. Only where the log can (ProjectingLog) and this
    // process has room to drive it; `startPass` then drives it here.
    const take =
      opts.takeLease && this.projecting && this.deps.lease && this.inline.size < (this.deps.inlinePasses ?? 0)
        ? { token: randomUUID(), asked: 0, taken: false }
        : undefined;
    // A submit is nearly always of a new gid: decide against the empty stream and let a conflict
    // (the gid exists) send us back to read it, saving a round trip on the hot path.
    const done = await this.appendDecided(
      gid,
      (state) => {
        const now = this.deps.clock.now();
        return this.withFollowUps(state, decide(command(now), state), now);
      },
      opts.assumeNew ? NEW_STREAM : undefined,
      take ? { take } : undefined,
    );
    const lease = take?.taken ? { token: take.token, asked: take.asked } : undefined;
    return { state: done.state, version: done.version, appended: done.events.length, lease };
  }

  /**
   * Gets a pass going at once (after a submit or a reset). With room for inline passes, this
   * process drives it itself, as DTM's receiving instance does, skipping a queue round trip;
   * otherwise (or in the API role) it is queued for the workers, keyed by the stream version so
   * repeats collapse. A process dying mid-pass is covered by the recovery sweep either way.
   */
  async startPass(gid: string, version: number, from?: HeldTransaction, lease?: TakenLease): Promise<void> {
    const trace = traceFor(from?.state);
    // Holding the lease (taken with the submit, when there was room), it drives the pass itself.
    if (lease || this.inline.size < (this.deps.inlinePasses ?? 0)) {
      const pass: Promise<unknown> = this.runPass(gid, { from, lease })
        .catch((err: unknown) =>
          // The stream is intact; hand the transaction to the queue instead.
          this.deps.scheduler.schedule(gid, this.deps.clock.now(), immediateKey(version), trace).catch(() => {
            this.deps.onInlineError?.(gid, err);
          }),
        )
        .finally(() => this.inline.delete(pass));
      this.inline.add(pass);
      return;
    }
    await this.deps.scheduler.schedule(gid, this.deps.clock.now(), immediateKey(version), trace);
  }

  /** Asks for the pass a transaction will need next (after a prepare: the one that enforces its timeout). */
  async schedule(gid: string, state: GlobalTransaction, version: number): Promise<void> {
    const p = plan(state, this.deps.clock.now(), this.deps.policy);
    if (p.kind === 'done') return;
    const trace = traceFor(state);
    if (p.kind === 'wait') await this.deps.scheduler.schedule(gid, p.until, waitKey(version, p.until), trace);
    else await this.deps.scheduler.schedule(gid, this.deps.clock.now(), immediateKey(version), trace);
  }

  /** Waits for the inline passes under way (on shutdown). */
  async drain(): Promise<void> {
    while (this.inline.size) await Promise.allSettled([...this.inline]);
  }

  /**
   * One pass over a transaction, under its lease. `notBefore` is the time the pass was scheduled for: a worker whose
   * clock lags treats what was due then as due now, so a pass never re-schedules itself.
   */
  async runPass(gid: string, opts: PassOptions = {}): Promise<PassResult> {
    const { from } = opts;
    let trace = opts.trace || (from?.state.status !== 'none' ? from?.state.trace : undefined);
    // `''` from a job means "known: no trace"; only a pass that knows nothing looks it up.
    if (opts.trace === undefined && !from) {
      // A pass from the queue without trace context joins the trace of the request that created it.
      const s = (await this.read(gid)).state;
      trace = s.status !== 'none' ? s.trace : undefined;
    }
    return inPassSpan(gid, trace, async () => {
      const result = await this.runUnderLease(gid, opts.notBefore ?? 0, from, opts.lease);
      this.deps.observer?.onPass?.(gid, result);
      return result;
    });
  }

  private async runUnderLease(
    gid: string,
    notBefore: number,
    from?: HeldTransaction,
    taken?: TakenLease,
  ): Promise<PassResult> {
    const { lease, clock, scheduler } = this.deps;
    if (!lease) return this.runRecordingFailure(gid, notBefore, NO_FENCE, from);
    const ttl = this.leaseTtlMs;
    const monotonic = this.monotonic;
    const asked = taken ? taken.asked : monotonic.now();
    const got = taken ? { token: taken.token } : await lease.acquire(gid, ttl);
    if (!('token' in got)) {
      // Another driver is on it. Come back when its lease would lapse, in case it died meanwhile;
      // if it lives, that pass finds nothing due and changes nothing.
      const at = clock.now() + got.heldForMs + 50;
      await scheduler.schedule(gid, at, `held.${Math.ceil(at / 1000)}`, traceFor(from?.state));
      const { state, version } = from ?? (await this.read(gid));
      return { state, version, lastOutcome: null, skipped: true };
    }
    const fence = new LeaseFence(lease, gid, got.token, ttl, monotonic, asked);
    try {
      return await this.runRecordingFailure(gid, notBefore, fence, from);
    } finally {
      fence.stop();
      if (!fence.endedWithAppend) await lease.release(gid, got.token).catch(() => undefined);
    }
  }

  /**
   * The steps of a pass; when they throw (a bug, a value the transport cannot send), the error is recorded as a
   * PassFailed event and the next pass asked for after the same backoff as a branch error (DESIGN invariant 9),
   * so the transaction neither disappears nor keeps a worker busy. Rethrows only when even that record fails
   * (the log unreachable): the pass job's own retries and the recovery sweep take over then.
   */
  private async runRecordingFailure(
    gid: string,
    notBefore: number,
    fence: Fence,
    from?: HeldTransaction,
  ): Promise<PassResult> {
    try {
      return await this.runSteps(gid, notBefore, fence, from);
    } catch (err) {
      const error = describeThrown(err);
      const { clock, policy } = this.deps;
      const recorded = await this.appendDecided(gid, (state) => {
        const now = clock.now();
        return this.withFollowUps(
          state,
          decide({ type: 'RecordPassFailure', data: { gid, error }, metadata: { now, policy } }, state),
          now,
        );
      }).catch(() => {
        throw err;
      });
      const { state, version } = recorded;
      this.deps.observer?.onPassFailed?.(gid, state, error, err);
      if (state.status === 'none' || recorded.events.length === 0) throw err;
      const retryAt = state.passFailures.retryAt;
      await this.deps.scheduler.schedule(gid, retryAt, waitKey(version, retryAt), traceFor(state));
      return { state, version, lastOutcome: null, failure: error };
    }
  }

  /**
   * The steps of a pass: plan, append what is due, start the calls that are due, record each answer before the next
   * step, until nothing is due and nothing is in flight; then ask for the pass at the planner's wake time.
   *
   * One driver at a time (DESIGN invariant 4): before each call it checks that it still holds the lease, and after
   * a conflict (someone else appended) it asks the lease store. Once the lease is lost, it starts no more calls,
   * records the answers of those in flight (they are facts), and hands the transaction to a new pass.
   */
  private async runSteps(gid: string, notBefore: number, fence: Fence, from?: HeldTransaction): Promise<PassResult> {
    const { clock, policy } = this.deps;
    let held = from ?? (await this.read(gid));
    let lastOutcome: BranchOutcome | null = null;
    let lostLease = false;
    const calls = new CallsInFlight();
    const now = (): number => Math.max(clock.now(), notBefore);
    const afterAppend = async (done: Appended<TxEvent, GlobalTransaction>): Promise<HeldTransaction> => {
      if (done.conflicts > 0 && !lostLease) lostLease = !(await fence.confirm());
      return done;
    };
    for (let step = 0; step < MAX_STEPS_PER_PASS; step++) {
      const p = plan(held.state, now(), policy);
      if (p.kind === 'append' && !lostLease) {
        // Re-planned against the stream on a conflict: someone else may have appended the same.
        held = await afterAppend(
          await this.appendDecided(gid, (state) => this.appendDue(state, now()), held, { mayDefer: true, fence }),
        );
        continue;
      }
      const tx = held.state;
      // No compensation starts while a forward call may still be running.
      if (p.kind === 'call' && tx.status !== 'none' && (tx.status !== 'aborting' || calls.size === 0)) {
        const due = p.calls.filter((c) => !calls.has(c));
        if (due.length && !lostLease) lostLease = !(await fence.holds());
        if (!lostLease) for (const call of due) calls.start(call, (c) => this.call(gid, tx, c));
      }
      if (calls.size === 0 && lostLease) {
        // Someone else drives it now; should nobody, this pass comes (and finds it held while the other lives).
        await this.deps.scheduler.schedule(gid, clock.now(), immediateKey(held.version), traceFor(tx));
        return { state: held.state, version: held.version, lastOutcome, handedOff: true };
      }
      if (calls.size === 0) {
        if (p.kind === 'wait') {
          const at = Math.max(p.until, clock.now() + 10);
          await this.deps.scheduler.schedule(gid, at, waitKey(held.version, p.until), traceFor(tx));
        }
        return { state: held.state, version: held.version, lastOutcome };
      }
      const done = await calls.next();
      if (done.outcome.kind !== 'success') lastOutcome = done.outcome;
      this.deps.observer?.onBranchResult?.(gid, held.state, done.call, done.outcome, done.ms);
      // Record before you move on (DESIGN invariant 3).
      held = await afterAppend(
        await this.appendDecided(
          gid,
          (state) => {
            const t = now();
            const cmd: TxCommand = {
              type: 'RecordBranchResult',
              data: { gid, ...done.call, outcome: done.outcome },
              metadata: { now: t, policy },
            };
            return this.withFollowUps(state, decide(cmd, state), t);
          },
          held,
          { mayDefer: true, fence },
        ),
      );
    }
    throw new Error(`pass over ${gid} did not settle in ${MAX_STEPS_PER_PASS} steps`);
  }

  /** One branch call of `tx`, with the transaction's headers and timeout. */
  private call(gid: string, tx: ActiveTransaction, call: BranchCall): Promise<BranchOutcome> {
    const timeoutS = tx.definition.options.requestTimeout || this.deps.requestTimeoutS;
    // Fields one by one: a spread followed by new keys is slow in V8 (see newBranch in the domain).
    return this.transport.call({
      branchId: call.branchId,
      op: call.op,
      url: call.url,
      data: call.data,
      gid,
      transType: tx.definition.transType,
      protocol: tx.definition.protocol,
      headers: passOnTrace(tx),
      timeoutMs: timeoutS * 1000,
    });
  }

  /** What the planner wants appended now, if anything (with its follow-ups). */
  private appendDue(state: GlobalTransaction, now: number): Decision<TxEvent, GlobalTransaction> | null {
    const p = plan(state, now, this.deps.policy);
    return p.kind === 'append' ? this.withFollowUps(state, p.events, now) : null;
  }

  /** `events`, plus what the planner appends at once after them (a failure → aborting, the last success → succeed). */
  private withFollowUps(
    state: GlobalTransaction,
    events: readonly TxEvent[],
    now: number,
  ): Decision<TxEvent, GlobalTransaction> | null {
    if (events.length === 0) return null;
    let s = fold(events, state);
    const all = [...events];
    for (let i = 0; i < MAX_FOLLOW_UPS; i++) {
      const p = plan(s, now, this.deps.policy);
      if (p.kind !== 'append') break;
      all.push(...p.events);
      s = fold(p.events, s);
    }
    return { events: all, state: s };
  }

  /** The transaction as it stands (from the log's snapshots where it keeps them). */
  private read(gid: string): Promise<HeldTransaction> {
    return readState(this.deps.log, gid);
  }

  /** {@link appendDecided} on the transaction's stream, timed, with observers told of each state change. */
  private appendDecided(
    gid: string,
    decideFn: (state: GlobalTransaction) => Decision<TxEvent, GlobalTransaction> | null,
    from?: HeldTransaction,
    how: AppendHow = {},
  ): Promise<Appended<TxEvent, GlobalTransaction>> {
    return appendDecided(this.log, gid, fold, decideFn, {
      from,
      read: () => this.read(gid),
      append: async (events, expected, before, after) => {
        const t0 = performance.now();
        const version = await this.appendRecorded(gid, events, expected, after, how);
        this.deps.observer?.onAppend?.(gid, before, after, events, performance.now() - t0);
        return version;
      },
    });
  }

  /**
   * Appends; where the log projects its own appends, with the read model of the state it leads to (the
   * projector's work, done here from the state the driver holds anyway), or with nothing when the pass goes on at
   * once to calls whose results it appends next (see ProjectingLog). Drops the pass lease with the append that
   * finishes the transaction.
   */
  private async appendRecorded(
    gid: string,
    events: readonly TxEvent[],
    expected: number,
    after: GlobalTransaction,
    how: AppendHow,
  ): Promise<number> {
    if (!this.projecting || after.status === 'none') return this.log.append(gid, events, expected);
    const { clock, policy, requestTimeoutS, retentionMs } = this.deps;
    if (how.mayDefer && plan(after, clock.now(), policy).kind === 'call') {
      return this.projecting.appendProjected(gid, events, expected, null);
    }
    const { summary, wakeAt } = summarize(after, expected + events.length, requestTimeoutS * 1000, policy);
    // Retention counts from the end, as the projector counts it.
    const endedAt = after.finishTime ?? after.rollbackTime;
    const expireAt = retentionMs && wakeAt === null && endedAt !== null ? endedAt + retentionMs : null;
    const endLease = wakeAt === null && how.fence?.leased === true;
    // A lease to take goes only with the append that starts the stream, and not with one that ends it at once.
    const take = how.take && expected === NO_STREAM && wakeAt !== null ? how.take : undefined;
    const takeLease = take ? { token: take.token, ttlMs: this.leaseTtlMs } : undefined;
    const projection: Projection = { summary, wakeAt, expireAt, endLease, takeLease };
    if (take) take.asked = this.monotonic.now();
    const version = await this.projecting.appendProjected(gid, events, expected, projection);
    if (endLease && how.fence) how.fence.endedWithAppend = true;
    if (take) take.taken = true;
    return version;
  }
}
