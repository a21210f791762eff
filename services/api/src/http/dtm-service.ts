import { randomBytes } from 'node:crypto';
import {
  decideTopic,
  foldTopic,
  payloadBase64,
  topicStreamId,
  TxRejected,
  type ActiveTransaction,
  type BranchDef,
  type Policy,
  type Protocol,
  type TransDefinition,
} from '@dtm-ts/domain';
import {
  branchRecord,
  buildTimeline,
  executeOnStream,
  nextWake,
  readState,
  transactionRecord,
  type Driver,
  type Timeline,
} from '@dtm-ts/engine';
import type { EventLog, ReadModel, TopicLog } from '@dtm-ts/ports';
import { transactionTrace } from '@dtm-ts/telemetry';
import { BadRequest } from './bad-request';
import { registrationRows, subscribeQuerySchema, topicParamSchema, unsubscribeQuerySchema } from '../edge/schemas';
import { parseInput } from '../edge/wire';
import {
  expandTopics,
  outboundUrlsOf,
  parseAbort,
  parseGidBody,
  parseGlobalRequest,
  parseRegisterBranch,
  type Limits,
  type ParsedGlobal,
} from './validate-global';

export interface DtmServiceDeps {
  readonly driver: Driver;
  readonly log: EventLog;
  readonly topics: TopicLog;
  readonly readModel: ReadModel;
  readonly limits: Limits;
  readonly requestTimeoutS: number;
  readonly timeoutToFailS: number;
  readonly policy: Policy;
  /** The outbound policy: every URL a request would have the TM call is checked before anything is written. */
  readonly outbound?: { refusal(url: string): string | null };
  readonly version: string;
  readonly now: () => number;
  /** Topic names for `scanKV`/`queryKV` (DTM's admin listing); without it they list no topic. */
  readonly topicIndex?: TopicIndex;
}

/** DTM's KV row (reference §6): topics are `cat: "topics"`, `v` the JSON text of their subscribers. */
export interface KvRow {
  readonly cat: string;
  readonly k: string;
  readonly v: string;
  readonly version: number;
  readonly create_time: string;
  readonly update_time: string;
}

/** Where topic names are listed from; the topic streams stay the truth. */
export interface TopicIndex {
  /** Records the name; called before the topic's first event is appended, so no topic is missed. */
  add(topic: string): Promise<void>;
  /** Topics that exist, by name, after `position` (exclusive); `next` is '' on the last page. */
  scan(position: string, limit: number): Promise<{ rows: KvRow[]; next: string }>;
  /** The topic `key` (or every topic when `key` is empty). */
  query(key: string): Promise<KvRow[]>;
}

export const SUCCESS = { dtm_result: 'SUCCESS' } as const;
type Json = Record<string, unknown>;

/** 22 characters of base-57, like DTM's shortuuid gids. */
const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
export const newGid = (): string => {
  let s = '';
  for (const b of randomBytes(22)) s += ALPHABET[b % ALPHABET.length];
  return s;
};

/**
 * DTM's TM operations, independent of the transport: the express routes and JSON-RPC both call
 * these. Success returns the answer body; a business refusal throws TxRejected('conflict') (409 /
 * FAILURE), bad input throws BadRequest.
 */
export class DtmService {
  constructor(private readonly deps: DtmServiceDeps) {}

  version(): Json {
    return { version: this.deps.version };
  }

  newGid(): Json {
    return { gid: newGid(), dtm_result: 'SUCCESS' };
  }

  private async subscribersOf(topic: string): Promise<string[]> {
    const { events } = await this.deps.topics.read(topicStreamId(topic));
    return foldTopic(events).subscribers.map((s) => s.url);
  }

  /** 422 naming the first URL of a parsed request (`outboundUrlsOf`) that the outbound policy refuses. */
  private checkOutbound(req: Parameters<typeof outboundUrlsOf>[0], protocol?: Protocol): void {
    const outbound = this.deps.outbound;
    if (!outbound) return;
    for (const { url } of outboundUrlsOf(req, protocol)) {
      const refused = outbound.refusal(url);
      if (refused) throw new BadRequest(`outbound URL refused: ${refused}`, 422);
    }
  }

  private async parseGlobal(body: unknown): Promise<ParsedGlobal> {
    const parsed = parseGlobalRequest(body, this.deps.limits);
    const expanded =
      parsed.definition.transType === 'msg'
        ? { ...parsed, branches: await expandTopics(parsed.branches, (t) => this.subscribersOf(t)) }
        : parsed;
    this.checkOutbound(expanded);
    return expanded;
  }

  /** Stores a prepared transaction and asks for the pass that watches it (a timeout, a resume callback). */
  private async storePrepared(definition: TransDefinition, branches: BranchDef[], traceparent?: string) {
    if (definition.transType === 'workflow' && !definition.workflow) {
      throw new BadRequest('custom_data with the workflow name is required', 422);
    }
    const done = await this.deps.driver.execute(
      definition.gid,
      (now) => ({
        type: 'PrepareGlobalTransaction',
        data: { definition, branches },
        metadata: { now, trace: transactionTrace(traceparent) },
      }),
      { assumeNew: true },
    );
    if (done.appended > 0) await this.deps.driver.schedule(definition.gid, done.state, done.version);
    return done;
  }

  /** `traceparent`: the caller's W3C trace context, as its request carried it (see transactionTrace). */
  async prepare(body: unknown, traceparent?: string): Promise<Json> {
    const { definition, branches } = await this.parseGlobal(body);
    await this.storePrepared(definition, branches, traceparent);
    return SUCCESS;
  }

  /**
   * `prepareWorkflow`: creates the workflow (or finds it, whatever its status) and answers it with
   * its recorded progress, in the field names of DTM's `DtmProgressesReply` (protobuf JSON).
   */
  async prepareWorkflow(body: unknown, traceparent?: string): Promise<Json> {
    const { definition, branches } = await this.parseGlobal(body);
    if (definition.transType !== 'workflow') {
      throw new BadRequest(`prepareWorkflow takes trans_type 'workflow', not '${definition.transType}'`, 422);
    }
    const tx = (await this.storePrepared(definition, branches, traceparent)).state;
    if (tx.status === 'none') throw new Error(`workflow ${definition.gid} was not stored`);
    return {
      transaction: {
        gid: tx.gid,
        status: tx.status,
        rollback_reason: tx.rollbackReason,
        result: tx.result ?? '',
      },
      progresses: tx.branches.map((b) => ({
        status: b.status,
        bin_data: payloadBase64(b.data, tx.definition.protocol),
        branch_id: b.branchId,
        op: b.op,
      })),
    };
  }

  async submit(body: unknown, traceparent?: string): Promise<Json> {
    const { definition, branches } = await this.parseGlobal(body);
    const done = await this.deps.driver.execute(
      definition.gid,
      (now) => ({
        type: 'SubmitGlobalTransaction',
        data: { definition, branches },
        metadata: { now, trace: transactionTrace(traceparent) },
      }),
      // A workflow's submit always finds the one prepareWorkflow created: read it first. A new transaction is driven
      // at once: its pass lease comes with the append that starts it.
      { assumeNew: definition.transType !== 'workflow', takeLease: true },
    );
    const waitResult =
      definition.options.waitResult || (done.state.status !== 'none' && done.state.definition.options.waitResult);
    if (!waitResult) {
      await this.deps.driver.startPass(definition.gid, done.version, done, done.lease);
      return SUCCESS;
    }
    // wait_result: one pass inline, then answer as DTM does (§4.0). If another driver holds the
    // transaction (a pass already under way), wait for it to let go, within the request timeout.
    let pass = await this.deps.driver.runPass(definition.gid, { from: done, lease: done.lease });
    // A deadline on a clock that never jumps: a wall-clock step must not cut the wait short or stretch it.
    const giveUp = performance.now() + this.deps.requestTimeoutS * 1000 * 2;
    while (pass.skipped && performance.now() < giveUp) {
      await new Promise((r) => setTimeout(r, 50));
      pass = await this.deps.driver.runPass(definition.gid);
    }
    const s = pass.state;
    if (s.status === 'succeed') return SUCCESS;
    const reason = s.status !== 'none' && s.rollbackReason ? s.rollbackReason : 'wait result not return success';
    throw new TxRejected('conflict', reason);
  }

  async abort(body: unknown): Promise<Json> {
    const { gid, transType, reason } = parseAbort(body);
    const done = await this.deps.driver.execute(gid, (now) => ({
      type: 'AbortGlobalTransaction',
      data: { gid, transType, reason },
      metadata: { now },
    }));
    if (done.appended > 0) await this.deps.driver.startPass(gid, done.version, done);
    return SUCCESS;
  }

  /** The protocol of a stored transaction; only read when the TM serves more than http. */
  private async protocolOf(gid: string): Promise<Protocol> {
    const served = this.deps.limits.protocols ?? ['http'];
    if (served.length === 1 && served[0] === 'http') return 'http';
    const { state: tx } = await readState(this.deps.log, gid);
    return tx.status === 'none' ? 'http' : tx.definition.protocol;
  }

  async registerBranch(body: unknown): Promise<Json> {
    const registration = parseRegisterBranch(body);
    const { gid, transType } = registration;
    const protocol = await this.protocolOf(gid);
    const branches = registrationRows(registration, protocol);
    this.checkOutbound({ branches }, protocol);
    await this.deps.driver.execute(gid, (now) => ({
      type: 'RegisterBranch',
      data: { gid, transType, branches, maxBranches: this.deps.limits.maxBranches },
      metadata: { now },
    }));
    return SUCCESS;
  }

  private queryView(tx: ActiveTransaction, version: number): Json {
    const wake = nextWake(tx, version, this.deps.requestTimeoutS * 1000, this.deps.policy);
    return {
      transaction: transactionRecord(tx, wake ? { at: wake.at, intervalS: 0 } : undefined),
      branches: tx.branches.map((b) => branchRecord(tx.gid, b, tx.definition.protocol)),
    };
  }

  async query(gid: string): Promise<Json> {
    if (gid === '') throw new BadRequest('no gid specified');
    // From the log's snapshot where it keeps one: a transaction that retried for days answers as fast as a new one.
    const { state: tx, version } = await readState(this.deps.log, gid);
    return tx.status === 'none' ? { transaction: null, branches: [] } : this.queryView(tx, version);
  }

  /** Audit: the transaction's history replayed from its stream, every event with its time, call and outcome. */
  async events(gid: string): Promise<Timeline> {
    if (gid === '') throw new BadRequest('no gid specified');
    const { events } = await this.deps.log.read(gid);
    if (events.length === 0) throw new TxRejected('not-found', `no transaction ${gid}`);
    return buildTimeline(gid, events);
  }

  async all(q: {
    gid: string;
    position: string;
    limit: number;
    status?: string;
    transType?: string;
    createTimeStart?: number;
    createTimeEnd?: number;
  }): Promise<Json> {
    if (q.gid !== '') {
      const { state: tx } = await readState(this.deps.log, q.gid);
      return { transactions: tx.status === 'none' ? [] : [transactionRecord(tx)], next_position: '' };
    }
    const page = await this.deps.readModel.list(q);
    return { transactions: page.items.map((s) => s.record), next_position: page.next };
  }

  async forceStop(body: unknown): Promise<Json> {
    const gid = parseGidBody(body);
    await this.deps.driver.execute(gid, (now) => ({ type: 'ForceStop', data: { gid }, metadata: { now } }));
    return SUCCESS;
  }

  async resetNextCronTime(body: unknown): Promise<Json> {
    const gid = parseGidBody(body);
    const done = await this.deps.driver.execute(gid, (now) => ({
      type: 'ResetNextCronTime',
      data: { gid },
      metadata: { now },
    }));
    if (done.appended > 0) await this.deps.driver.startPass(gid, done.version, done);
    return SUCCESS;
  }

  /** Pulls forward every unfinished transaction whose next attempt is more than `timeoutS` away (after an outage). */
  async resetCronTime(timeoutS: number, limit: number): Promise<Json> {
    const due = await this.deps.readModel.scheduledAfter(this.deps.now() + timeoutS * 1000, limit);
    let count = 0;
    for (const d of due) {
      const done = await this.deps.driver.execute(d.gid, (now) => ({
        type: 'ResetNextCronTime',
        data: { gid: d.gid },
        metadata: { now },
      }));
      if (done.appended > 0) await this.deps.driver.startPass(d.gid, done.version, done);
      count++;
    }
    return { has_remaining: count === limit, succeed_count: count };
  }

  async subscribe(topicIn: string, urlIn: string, remarkIn: string): Promise<Json> {
    const { topic, url, remark } = parseInput(subscribeQuerySchema, { topic: topicIn, url: urlIn, remark: remarkIn });
    this.checkOutbound({ branches: [{ branchId: '', op: 'action', url, data: '' }] });
    await this.deps.topicIndex?.add(topic);
    await executeOnStream(this.deps.topics, topicStreamId(topic), foldTopic, decideTopic, {
      type: 'Subscribe' as const,
      data: { topic, url, remark },
      metadata: { now: this.deps.now() },
    });
    return SUCCESS;
  }

  /** DTM's `scanKV`: the only category is `topics`; any other lists nothing, as in DTM. */
  async scanKV(cat: string, position: string, limit: number): Promise<Json> {
    if (cat === '') throw new BadRequest('cat is required');
    if (cat !== 'topics' || !this.deps.topicIndex) return { kv: [], next_position: '' };
    const page = await this.deps.topicIndex.scan(position, limit);
    return { kv: page.rows, next_position: page.next };
  }

  /** DTM's `queryKV`: the row of `key` in `cat` (every row of the category when `key` is empty). */
  async queryKV(cat: string, key: string): Promise<Json> {
    if (cat === '') throw new BadRequest('cat is required');
    if (cat !== 'topics' || !this.deps.topicIndex) return { kv: [] };
    return { kv: await this.deps.topicIndex.query(key) };
  }

  async unsubscribe(topicIn: string, urlIn: string): Promise<Json> {
    const { topic, url } = parseInput(unsubscribeQuerySchema, { topic: topicIn, url: urlIn });
    await executeOnStream(this.deps.topics, topicStreamId(topic), foldTopic, decideTopic, {
      type: 'Unsubscribe' as const,
      data: { topic, url },
      metadata: { now: this.deps.now() },
    });
    return SUCCESS;
  }

  async deleteTopic(topicIn: string): Promise<Json> {
    const topic = parseInput(topicParamSchema, { topic: topicIn });
    await executeOnStream(this.deps.topics, topicStreamId(topic), foldTopic, decideTopic, {
      type: 'DeleteTopic' as const,
      data: { topic },
      metadata: { now: this.deps.now() },
    });
    return SUCCESS;
  }
}

/** The audit timeline lives in the engine (shared with `npm run replay`); re-exported for existing importers. */
export { buildTimeline, formatTimeline, timelineWithin, type Timeline, type TimelineEntry } from '@dtm-ts/engine';
