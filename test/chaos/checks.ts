import { query } from '@dtm-ts/client';
import type { BankService } from '../../examples/bank-transfer/src/bank-service';
import type { KafkaCreditConsumer } from '../../examples/bank-transfer/src/kafka-credit';
import { setTimeout as pause } from 'node:timers/promises';
import { MODES, type FinalStatus, type Mode, type TransferRecord } from './load';

/** A process kill: what, when, and the transfers open at that moment. */
export interface KillRecord {
  readonly what: string;
  readonly at: number;
  readonly open: readonly string[];
}

/** What a run measured; `failures` names every invariant that did not hold (empty: the run passed). */
export interface RunFigures {
  readonly seed: number;
  readonly minutes: number;
  readonly sent: number;
  readonly accepted: number;
  readonly succeed: number;
  readonly failed: number;
  readonly unfinished: number;
  readonly byMode: Record<Mode, Partial<Record<FinalStatus | 'open', number>>>;
  readonly balance: number;
  readonly expectedBalance: number;
  readonly frozen: number;
  readonly halfApplied: number;
  readonly compensationsWithoutAbort: number;
  readonly duplicateEffects: number;
  readonly ledgerMismatches: number;
  readonly xaPreparedLeft: number;
  readonly resultsRecordedTwice: number;
  readonly eventsAfterEnd: number;
  readonly kafkaMissing: number;
  readonly kafkaDuplicated: number;
  readonly branchCalls: Record<string, number>;
  readonly kills: Record<string, number>;
  readonly killCount: number;
  readonly recoveryP50Ms: number | undefined;
  readonly recoveryMaxMs: number | undefined;
  readonly faults: Record<string, number>;
  readonly rmFaults: Record<string, number>;
  readonly failures: string[];
  /** The report, as printed. */
  readonly lines: string[];
}

export interface CheckInput {
  readonly seed: number;
  readonly minutes: number;
  readonly records: Map<string, TransferRecord>;
  readonly apis: () => string[];
  readonly banks: readonly [BankService, BankService];
  readonly gidPrefix: string;
  readonly consumer: KafkaCreditConsumer;
  readonly expectedTotal: number;
  readonly initial: number;
  readonly kills: readonly KillRecord[];
  readonly faults: Record<string, number>;
  readonly startFailures: readonly string[];
  readonly partitionedExit: number | undefined;
  readonly recoveryBoundS: number;
  readonly loadAverage: readonly number[];
  readonly log: (line: string) => void;
}

/** One event of a transaction's timeline (`GET /events`), the fields the log check reads. */
interface TimelineEvent {
  readonly revision: number;
  readonly type: string;
  readonly branchId?: string;
  readonly op?: string;
  readonly status: string;
}

/**
 * Reads every ended transfer's event log back from the TM and finds what a driver that had lost its lease (paused,
 * partitioned, skewed, or racing a takeover) would leave if fencing failed: a branch result recorded twice, or any
 * event appended after the transaction's end. Conditional appends and the lease fence must make both impossible.
 */
const logAnomalies = async (
  input: CheckInput,
  ended: readonly TransferRecord[],
): Promise<{ twice: string[]; afterEnd: string[]; unread: number }> => {
  const twice: string[] = [];
  const afterEnd: string[] = [];
  let unread = 0;
  let next = 0;
  const readOne = async (r: TransferRecord): Promise<void> => {
    const apis = input.apis();
    for (let attempt = 0; attempt < 5; attempt++) {
      const res = await fetch(`${apis[attempt % apis.length]}/api/dtmsvr/events?gid=${encodeURIComponent(r.t.gid)}`, {
        signal: AbortSignal.timeout(5_000),
      }).catch(() => undefined);
      if (res?.status !== 200) {
        await pause(300);
        continue;
      }
      const { events } = (await res.json()) as { events: TimelineEvent[] };
      const results = new Map<string, number>();
      for (const e of events)
        if ((e.type === 'BranchSucceeded' || e.type === 'BranchFailed') && e.branchId !== undefined) {
          const key = `${e.branchId}/${e.op ?? ''}`;
          results.set(key, (results.get(key) ?? 0) + 1);
        }
      for (const [key, n] of results) if (n > 1) twice.push(`${r.t.gid} ${key} ×${n}`);
      const end = events.findIndex((e) => e.status === 'succeed' || e.status === 'failed');
      if (end >= 0 && end < events.length - 1)
        afterEnd.push(
          `${r.t.gid}: ${events
            .slice(end + 1)
            .map((e) => `#${e.revision} ${e.type}`)
            .join(', ')}`,
        );
      return;
    }
    unread++;
  };
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ended.length) await readOne(ended[next++]!);
    }),
  );
  return { twice, afterEnd, unread };
};

const percentile = (sorted: readonly number[], p: number): number | undefined =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Final status of every transfer the tracker has not seen end: a gid the TM does not know now never was stored. */
const settleUnknown = async (input: CheckInput): Promise<void> => {
  for (const r of input.records.values()) {
    if (r.status !== undefined) continue;
    const apis = input.apis();
    for (let attempt = 0; attempt < 5 && r.status === undefined; attempt++) {
      const tx = await query(`${apis[attempt % apis.length]}/api/dtmsvr`, r.t.gid, { httpTimeoutMs: 5_000 }).then(
        (q) => q.transaction,
        () => undefined,
      );
      if (tx === undefined) {
        await pause(500);
        continue;
      }
      if (tx === null) r.status = 'absent';
      else if (tx.status === 'succeed' || tx.status === 'failed') {
        r.status = tx.status;
        r.finalAt = Date.now();
      }
      break;
    }
  }
};

/**
 * Checks the books and the TM after a run, and prints the figures. The invariants: every accepted transfer ended
 * within the bound; money is conserved and nothing stays frozen or prepared; each transfer is applied in full
 * (succeed) or not at all (failed, absent); no compensation ran for a transfer that was not aborted; no effect
 * passed the barrier twice; every Kafka-delivered credit arrived.
 */
export const checkRun = async (input: CheckInput): Promise<RunFigures> => {
  await settleUnknown(input);
  const records = [...input.records.values()];
  const [alpha, beta] = input.banks;
  const failures: string[] = [];
  const fail = (what: string) => failures.push(what);

  // Kafka: give the consumer time to apply every credit of a committed message (it may still be catching up).
  const kafkaSucceeded = records.filter((r) => r.mode === 'msg-kafka' && r.status === 'succeed');
  const missing = () => kafkaSucceeded.filter((r) => !input.consumer.received.has(`${r.t.gid}/01`));
  const kafkaDeadline = Date.now() + 60_000;
  while (missing().length > 0 && Date.now() < kafkaDeadline) await pause(500);
  const kafkaMissing = missing();
  const kafkaDuplicated = [...input.consumer.received.values()].reduce((s, n) => s + n - 1, 0);

  const byMode = Object.fromEntries(MODES.map((m) => [m, {}])) as RunFigures['byMode'];
  for (const r of records) {
    const k = r.status ?? 'open';
    byMode[r.mode][k] = (byMode[r.mode][k] ?? 0) + 1;
  }
  const accepted = records.filter((r) => r.status !== 'absent');
  const unfinished = records.filter((r) => r.status === undefined);

  const [ta, tb] = [await alpha.db.totals(), await beta.db.totals()];
  const balance = ta.balance + tb.balance;
  const frozen = ta.frozen + tb.frozen;

  // Each transfer in full or not at all, from both ledgers.
  const net = new Map([
    [alpha, await alpha.db.netByGid()],
    [beta, await beta.db.netByGid()],
  ]);
  const halfApplied: string[] = [];
  for (const r of records) {
    if (r.status === undefined) continue;
    const out = net.get(r.from)!.get(r.t.gid) ?? 0;
    const into = net.get(r.to)!.get(r.t.gid) ?? 0;
    const [wantOut, wantIn] = r.status === 'succeed' ? [-r.t.amount, r.t.amount] : [0, 0];
    if (out !== wantOut || into !== wantIn)
      halfApplied.push(
        `${r.t.gid} ${r.status} (AP: ${r.apSaid}): sender ${out}, receiver ${into}, amount ${r.t.amount}`,
      );
  }

  // Compensating calls (compensate, cancel, rollback) reached an RM for a transfer the TM did not abort.
  const compensated: string[] = [];
  for (const bank of input.banks)
    for (const [gid, n] of bank.compensations) {
      const status = input.records.get(gid)?.status;
      if (status !== 'failed' && status !== undefined) compensated.push(`${gid} ${status}: ${n} at ${bank.name}`);
    }

  const duplicates = [...(await alpha.db.duplicateEffects()), ...(await beta.db.duplicateEffects())];

  // The ledger explains every balance: no change outside a barrier-guarded operation.
  let ledgerMismatches = 0;
  for (const bank of input.banks) {
    const byAccount = await bank.db.netByAccount();
    for (const a of await bank.db.accounts())
      if (a.balance !== input.initial + (byAccount.get(a.id) ?? 0)) ledgerMismatches++;
  }
  const logs = await logAnomalies(
    input,
    records.filter((r) => r.status === 'succeed' || r.status === 'failed'),
  );
  const xaLeft = [...(await alpha.db.preparedXids(input.gidPrefix)), ...(await beta.db.preparedXids(input.gidPrefix))];

  const branchCalls: Record<string, number> = {};
  for (const bank of input.banks)
    for (const [route, n] of [...bank.calls].sort()) branchCalls[`${bank.name} ${route}`] = n;
  const rmFaults: Record<string, number> = {};
  for (const bank of input.banks)
    for (const [k, n] of Object.entries(bank.chaos.counts)) rmFaults[k] = (rmFaults[k] ?? 0) + n;

  const kills: Record<string, number> = {};
  for (const k of input.kills) {
    const kind = k.what.replace(/\d+$/, '');
    kills[kind] = (kills[kind] ?? 0) + 1;
  }
  // Recovery after a kill: until every transfer open at that moment had ended (under the other faults as well).
  const recoveries = input.kills
    .map((k) => {
      const ends = k.open.map((g) => input.records.get(g)).filter((r) => r?.status !== 'absent');
      if (ends.some((r) => r?.finalAt === undefined)) return undefined;
      return Math.max(k.at, ...ends.map((r) => r!.finalAt!)) - k.at;
    })
    .filter((ms): ms is number => ms !== undefined)
    .sort((a, b) => a - b);

  if (unfinished.length > 0)
    fail(`${unfinished.length} transfers unfinished after ${input.recoveryBoundS} s: ${gids(unfinished)}`);
  if (balance !== input.expectedTotal) fail(`total balance ${balance}, expected ${input.expectedTotal}`);
  if (frozen !== 0) fail(`${frozen} still frozen`);
  if (halfApplied.length > 0) fail(`${halfApplied.length} half applied: ${halfApplied.slice(0, 5).join('; ')}`);
  if (compensated.length > 0)
    fail(`${compensated.length} compensated without an abort: ${compensated.slice(0, 5).join('; ')}`);
  if (duplicates.length > 0) fail(`${duplicates.length} duplicate effects: ${JSON.stringify(duplicates.slice(0, 5))}`);
  if (ledgerMismatches > 0) fail(`${ledgerMismatches} balances not explained by the ledger`);
  if (xaLeft.length > 0) fail(`${xaLeft.length} XA transactions left prepared: ${xaLeft.slice(0, 5).join(', ')}`);
  if (logs.twice.length > 0)
    fail(`${logs.twice.length} branch results recorded twice: ${logs.twice.slice(0, 5).join('; ')}`);
  if (logs.afterEnd.length > 0)
    fail(`${logs.afterEnd.length} transactions with events after their end: ${logs.afterEnd.slice(0, 5).join('; ')}`);
  if (logs.unread > 0) fail(`${logs.unread} event logs could not be read back from the TM`);
  if (kafkaMissing.length > 0) fail(`${kafkaMissing.length} Kafka records missing: ${gids(kafkaMissing)}`);
  if (input.startFailures.length > 0) fail(`processes that did not start again: ${input.startFailures.join('; ')}`);

  const figures: Omit<RunFigures, 'lines'> = {
    seed: input.seed,
    minutes: input.minutes,
    sent: records.length,
    accepted: accepted.length,
    succeed: records.filter((r) => r.status === 'succeed').length,
    failed: records.filter((r) => r.status === 'failed').length,
    unfinished: unfinished.length,
    byMode,
    balance,
    expectedBalance: input.expectedTotal,
    frozen,
    halfApplied: halfApplied.length,
    compensationsWithoutAbort: compensated.length,
    duplicateEffects: duplicates.length,
    ledgerMismatches,
    xaPreparedLeft: xaLeft.length,
    resultsRecordedTwice: logs.twice.length,
    eventsAfterEnd: logs.afterEnd.length,
    kafkaMissing: kafkaMissing.length,
    kafkaDuplicated,
    branchCalls,
    kills,
    killCount: input.kills.length,
    recoveryP50Ms: percentile(recoveries, 50),
    recoveryMaxMs: recoveries.at(-1),
    faults: input.faults,
    rmFaults,
    failures,
  };
  const lines = report(figures, input);
  for (const line of lines) input.log(line);
  return { ...figures, lines };
};

const gids = (rs: readonly TransferRecord[]): string =>
  rs
    .slice(0, 5)
    .map((r) => `${r.t.gid} (AP: ${r.apSaid})`)
    .join(', ');

const ok = (good: boolean): string => (good ? 'ok' : 'FAIL');
const secs = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

const report = (f: Omit<RunFigures, 'lines'>, input: CheckInput): string[] => [
  `chaos result (seed ${f.seed}, ${f.minutes} min, load average at the end ${input.loadAverage.map((l) => l.toFixed(1)).join(' ')})`,
  `  transfers sent                         ${f.sent}`,
  `  transfers accepted                     ${f.accepted}`,
  `  finished succeed                       ${f.succeed}`,
  `  finished failed                        ${f.failed}`,
  `  unfinished after ${String(input.recoveryBoundS).padEnd(4)} s                ${f.unfinished}  ${ok(f.unfinished === 0)}`,
  `  total balance                          ${f.balance} (expected ${f.expectedBalance})  ${ok(f.balance === f.expectedBalance)}`,
  `  still frozen                           ${f.frozen}  ${ok(f.frozen === 0)}`,
  `  half applied                           ${f.halfApplied}  ${ok(f.halfApplied === 0)}`,
  `  compensations without a recorded abort ${f.compensationsWithoutAbort}  ${ok(f.compensationsWithoutAbort === 0)}`,
  `  duplicate effects past the barrier     ${f.duplicateEffects}  ${ok(f.duplicateEffects === 0)}`,
  `  balances not explained by the ledger   ${f.ledgerMismatches}  ${ok(f.ledgerMismatches === 0)}`,
  `  XA transactions left prepared          ${f.xaPreparedLeft}  ${ok(f.xaPreparedLeft === 0)}`,
  `  branch results recorded twice (log)    ${f.resultsRecordedTwice}  ${ok(f.resultsRecordedTwice === 0)}`,
  `  events appended after the end (log)    ${f.eventsAfterEnd}  ${ok(f.eventsAfterEnd === 0)}`,
  `  Kafka records missing                  ${f.kafkaMissing}  ${ok(f.kafkaMissing === 0)}`,
  `  Kafka records duplicated               ${f.kafkaDuplicated} (consumer restarted ${input.consumer.restarts} times)`,
  `  by mode                                ${JSON.stringify(f.byMode)}`,
  `  process kills                          ${f.killCount} ${JSON.stringify(f.kills)}`,
  `  recovery after a kill p50 / max        ${secs(f.recoveryP50Ms)} / ${secs(f.recoveryMaxMs)}`,
  `  faults                                 ${JSON.stringify(f.faults)}`,
  `  RM faults                              ${JSON.stringify(f.rmFaults)}`,
  `  partitioned worker                     ${input.partitionedExit === undefined ? 'running to the end' : `exited with ${input.partitionedExit}`}`,
  `  branch calls                           ${JSON.stringify(f.branchCalls)}`,
  ...(f.failures.length === 0 ? ['  every invariant held'] : f.failures.map((x) => `  FAILED: ${x}`)),
  `  replay: CHAOS_SEED=${f.seed} CHAOS_MINUTES=${f.minutes} npm run chaos`,
];
