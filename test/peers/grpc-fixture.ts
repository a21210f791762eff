import { afterAll, beforeAll } from 'vitest';
import type { Config } from '@dtm-ts/config';
import { useTmFixture, type DtmClient, type TmFixture } from '../support/tm-harness';
import { startGrpcBranchPeer, type GrpcBranchPeer } from './grpc-branch-peer';

/** The usual TM fixture plus a scripted gRPC RM (read `grpc` inside tests; it is set in beforeAll). */
export const useGrpcFixture = (overrides: Partial<Config> = {}): TmFixture & { readonly grpc: GrpcBranchPeer } => {
  const tm = useTmFixture(overrides);
  const f = { grpc: undefined as unknown as GrpcBranchPeer };
  beforeAll(async () => {
    f.grpc = await startGrpcBranchPeer();
  });
  afterAll(async () => {
    await f.grpc?.close();
  });
  return {
    get redis() {
      return tm.redis;
    },
    get tm() {
      return tm.tm;
    },
    get peer() {
      return tm.peer;
    },
    get dtm() {
      return tm.dtm;
    },
    get grpc() {
      return f.grpc;
    },
  };
};

/** Base64 of the UTF-8 of `text`, or of the bytes given: what `bin_payloads` and `bin_data` carry. */
export const b64 = (data: string | Uint8Array): string =>
  (typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)).toString('base64');

/** One recorded event of the audit timeline (`GET /events`), the fields these tests read. */
export interface TimelineEvent {
  readonly type: string;
  readonly at: string;
  readonly branchId?: string;
  readonly op?: string;
  readonly outcome?: 'succeed' | 'failed' | 'ongoing' | 'error';
  readonly reason?: string;
  readonly retryAt?: string;
}

export const timeline = async (
  dtm: DtmClient,
  gid: string,
): Promise<{ events: TimelineEvent[]; compensations: { branchId: string; op: string; outcome: string }[] }> =>
  (await dtm.get(`/events?gid=${encodeURIComponent(gid)}`)).body as never;

/**
 * The retries the TM scheduled for one branch call, from its events: each one's outcome, the delay it chose
 * (`retryAt - at`, exact: both come from one clock reading) and the answer that caused it.
 */
export const retriesOf = async (dtm: DtmClient, gid: string, branchId: string, op: string) =>
  (await timeline(dtm, gid)).events
    .filter((e) => e.branchId === branchId && e.op === op && e.retryAt)
    .map((e) => ({ outcome: e.outcome, delayMs: Date.parse(e.retryAt!) - Date.parse(e.at), reason: e.reason ?? '' }));
