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
  VersionConflict,
  type BranchTransport,
  type Clock,
  type EventLog,
  type PassLease,
  type PassScheduler,
} from '@dtm-ts/ports';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Attr, contextFrom, currentTraceparent, inSpan } from '@dtm-ts/telemetry';
import { immediateKey, waitKey } from './views';
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
  /** How many passes this process may run itself after a submit (0: always queue them). */
  readonly inlinePasses?: number;
  readonly onInlineError?: (gid: string, err: unknown) => void;
}

/** Hooks for metrics and logs; the driver itself stays free of both. */
export interface DriverObserver {
  onBranchResult?(gid: string, tx: GlobalTransaction, call: BranchCall, outcome: BranchOutcome, ms: number): void;
  onPass?(gid: string, result: PassResult): void;
  /** Called after every successful append, with the state before and after. */
  onAppend?(
    gid: string,
    before: GlobalTransaction,
    after: GlobalTransaction,
    events: readonly TxEvent[],
    ms: number,
  ): void;
}

export interface PassOptions {
  /** The time the pass was scheduled for (see runPass). */
  readonly notBefore?: number;
  /** The state and version the caller already holds (skips a read). */
  readonly from?: { state: GlobalTransaction; version: number };
  /** W3C traceparent to continue (from the job); else the transaction's own. */
  readonly trace?: string;
}

/**
 * The trace a scheduled pass should join: the active one, else the transaction's own; `''` when
 * there is none, so the pass does not read the log just to find that out.
 */
const traceFor = (state?: GlobalTransaction): string =>
  currentTraceparent() ?? (state && state.status !== 'none' ? state.trace : undefined) ?? '';

/** How a pass ended. `lastOutcome` is the last non-success answer seen in the pass, if any. */
export interface PassResult {
  readonly state: GlobalTransaction;
  readonly version: number;
  readonly lastOutcome: BranchOutcome | null;
  /** True when another driver held the transaction, so this pass did nothing. */
  readonly skipped?: boolean;
}

const MAX_CONFLICTS = 100;

/** Appends that follow from a decision at once (a failure → aborting, the last success → succeed), merged into one append. */
const withFollowUps = (
  state: GlobalTransaction,
  events: TxEvent[],
  now: number,
  policy: Policy,
): { events: TxEvent[]; state: GlobalTransaction } => {
  let s = fold(events, state);
  const all = [...events];
  for (let i = 0; i < 4; i++) {
    const p = plan(s, now, policy);
    if (p.kind !== 'append') break;
    all.push(...p.events);
    s = fold(p.events, s);
  }
  return { events: all, state: s };
};

/**
 * Runs the pure core against the ports: decide → append (with the expected revision) → plan → call
 * branches → append each result → … until nothing is due, then asks for the next pass.
 */
export class Driver {
  constructor(private readonly deps: DriverDeps) {}

  /**
   * Decides a command against the current stream and appends the outcome, re-reading and
   * re-deciding on conflicts. Rejections of `decide` (TxRejected) propagate untouched.
   */
  async execute(
    gid: string,
    command: (now: number) => TxCommand,
    opts: { assumeNew?: boolean } = {},
  ): Promise<{ state: GlobalTransaction; version: number; appended: number }> {
    // A submit is nearly always of a new gid: decide against the empty stream and let a conflict
    // (the gid exists) send us back to read it, saving a round trip on the hot path.
    let { state, version } = opts.assumeNew
      ? { state: fold([]), version: NO_STREAM }
      : await readState(this.deps.log, gid);
    for (let attempt = 0; ; attempt++) {
      const now = this.deps.clock.now();
      const decided = decide(command(now), state);
      if (decided.length === 0) return { state, version, appended: 0 };
      const next = withFollowUps(state, decided, now, this.deps.policy);
      try {
        version = await this.append(gid, state, next, version);
        return { state: next.state, version, appended: next.events.length };
      } catch (err) {
        if (!(err instanceof VersionConflict) || attempt >= MAX_CONFLICTS) throw err;
        ({ state, version } = await readState(this.deps.log, gid));
      }
    }
  }

  /** Appends with the expected revision, timed and traced; observers see each state change. */
  private async append(
    gid: string,
    before: GlobalTransaction,
    next: { events: TxEvent[]; state: GlobalTransaction },
    expected: number,
  ): Promise<number> {
    const t0 = performance.now();
    const version = await inSpan('dtm.append', { [Attr.gid]: gid, 'dtm.events': next.events.length }, () =>
      this.deps.log.append(gid, next.events, expected),
    );
    this.deps.observer?.onAppend?.(gid, before, next.state, next.events, performance.now() - t0);
    return version;
  }

  private readonly inline = new Set<Promise<unknown>>();

  /**
   * Gets a pass going at once (after a submit or a reset). With room for inline passes, this
   * process drives it itself, as DTM's receiving instance does, skipping a queue round trip;
   * otherwise (or in the API role) it is queued for the workers, keyed by the stream version so
   * repeats collapse. A process dying mid-pass is covered by the recovery sweep either way.
   */
  async kick(gid: string, version: number, from?: { state: GlobalTransaction; version: number }): Promise<void> {
    const trace = traceFor(from?.state);
    if (this.inline.size < (this.deps.inlinePasses ?? 0)) {
      const pass: Promise<unknown> = this.runPass(gid, { from })
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
      const { state: s } = await readState(this.deps.log, gid);
      trace = s.status !== 'none' ? s.trace : undefined;
    }
    const parent = trace && !trace.startsWith('00-00000000') ? contextFrom(trace) : context.active();
    return inSpan(
      'dtm.pass',
      { [Attr.gid]: gid },
      async (span) => {
        const result = await this.leased(gid, opts.notBefore ?? 0, from);
        span.setAttribute(Attr.status, result.state.status);
        if (result.skipped) span.setAttribute('dtm.pass.skipped', true);
        this.deps.observer?.onPass?.(gid, result);
        return result;
      },
      parent,
    );
  }

  private async leased(
    gid: string,
    notBefore: number,
    from?: { state: GlobalTransaction; version: number },
  ): Promise<PassResult> {
    const { lease, clock, scheduler, log } = this.deps;
    if (!lease) return this.drive(gid, notBefore, from);
    const ttl = this.deps.leaseTtlMs ?? 10_000;
    const got = await lease.acquire(gid, ttl);
    if (!('token' in got)) {
      // Another driver is on it. Come back when its lease would lapse, in case it died meanwhile;
      // if it lives, that pass finds nothing due and changes nothing.
      const at = clock.now() + got.heldForMs + 50;
      await scheduler.schedule(gid, at, `held.${Math.ceil(at / 1000)}`, traceFor(from?.state));
      if (from) return { ...from, lastOutcome: null, skipped: true };
      return { ...(await readState(log, gid)), lastOutcome: null, skipped: true };
    }
    const renew = setInterval(() => {
      lease.renew(gid, got.token, ttl).catch(() => undefined);
    }, ttl / 3);
    try {
      return await this.drive(gid, notBefore, from);
    } finally {
      clearInterval(renew);
      await lease.release(gid, got.token).catch(() => undefined);
    }
  }

  private async drive(
    gid: string,
    notBefore: number,
    from?: { state: GlobalTransaction; version: number },
  ): Promise<PassResult> {
    const { log, transport, clock, policy } = this.deps;
    let version: number;
    let state: GlobalTransaction;
    if (from) ({ state, version } = from);
    else ({ state, version } = await readState(log, gid));
    let lastOutcome: BranchOutcome | null = null;
    const inflight = new Map<string, Promise<{ call: BranchCall; outcome: BranchOutcome; ms: number }>>();
    const now = (): number => Math.max(clock.now(), notBefore);

    const reread = async (): Promise<void> => {
      ({ state, version } = await readState(log, gid));
    };

    const appendPlanned = async (planned: TxEvent[]): Promise<void> => {
      const next = withFollowUps(state, planned, now(), policy);
      try {
        version = await this.append(gid, state, next, version);
        state = next.state;
      } catch (err) {
        if (!(err instanceof VersionConflict)) throw err;
        await reread();
      }
    };

    const record = async (call: BranchCall, outcome: BranchOutcome): Promise<void> => {
      for (let attempt = 0; attempt <= MAX_CONFLICTS; attempt++) {
        const t = now();
        const cmd: TxCommand = {
          type: 'RecordBranchResult',
          data: { gid, ...call, outcome },
          metadata: { now: t, policy },
        };
        const decided = decide(cmd, state);
        if (decided.length === 0) return;
        const next = withFollowUps(state, decided, t, policy);
        try {
          version = await this.append(gid, state, next, version);
          state = next.state;
          return;
        } catch (err) {
          if (!(err instanceof VersionConflict)) throw err;
          await reread();
        }
      }
      throw new Error(`gave up recording ${call.branchId}/${call.op} of ${gid} after ${MAX_CONFLICTS} conflicts`);
    };

    const start = (tx: ActiveTransaction, call: BranchCall): void => {
      const key = `${call.branchId}/${call.op}`;
      const timeoutS = tx.definition.options.requestTimeout || this.deps.requestTimeoutS;
      const t0 = performance.now();
      const attrs = { [Attr.gid]: gid, [Attr.branchId]: call.branchId, [Attr.op]: call.op, 'url.full': call.url };
      inflight.set(
        key,
        inSpan(
          `dtm.branch ${call.op}`,
          attrs,
          async (span) => {
            // The RM's own spans join this trace through the W3C traceparent header.
            const traceparent = currentTraceparent();
            const branchHeaders = tx.definition.options.branchHeaders;
            const outcome = await transport.call({
              ...call,
              gid,
              transType: tx.definition.transType,
              headers: traceparent ? { ...branchHeaders, traceparent } : branchHeaders,
              timeoutMs: timeoutS * 1000,
            });
            span.setAttribute(Attr.outcome, outcome.kind);
            if (outcome.kind === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.detail });
            return { call, outcome, ms: performance.now() - t0 };
          },
          undefined,
          SpanKind.CLIENT,
        ),
      );
    };

    for (let step = 0; step < 100_000; step++) {
      const p = plan(state, now(), policy);
      if (p.kind === 'append') {
        await appendPlanned(p.events);
        continue;
      }
      if (p.kind === 'call' && state.status !== 'none') {
        // No compensation starts while a forward call may still be running.
        const mayStart = state.status !== 'aborting' || inflight.size === 0;
        if (mayStart) for (const c of p.calls) if (!inflight.has(`${c.branchId}/${c.op}`)) start(state, c);
      }
      if (inflight.size === 0) {
        if (p.kind === 'wait') {
          const at = Math.max(p.until, clock.now() + 10);
          await this.deps.scheduler.schedule(gid, at, waitKey(version, p.until), traceFor(state));
        }
        return { state, version, lastOutcome };
      }
      const done = await Promise.race(inflight.values());
      inflight.delete(`${done.call.branchId}/${done.call.op}`);
      if (done.outcome.kind !== 'success') lastOutcome = done.outcome;
      this.deps.observer?.onBranchResult?.(gid, state, done.call, done.outcome, done.ms);
      await record(done.call, done.outcome);
    }
    throw new Error(`pass over ${gid} did not settle`);
  }
}
