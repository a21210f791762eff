import { DtmBadRequest } from '../errors';
import type { BranchInfo } from '../branch-info';

/**
 * What the RM helpers read from a call's metadata: grpc-js's `Metadata` (`call.metadata`) fits, so does any
 * object whose `get(key)` answers the values of a key.
 */
export interface MetadataLike {
  get(key: string): readonly unknown[];
}

/** Metadata names the TM (and an AP) sets on a branch call, as DTM's `TransInfo2Ctx` does. */
export const DTM_METADATA = {
  gid: 'dtm-gid',
  transType: 'dtm-trans_type',
  branchId: 'dtm-branch_id',
  op: 'dtm-op',
  dtm: 'dtm-dtm',
  phase2Url: 'dtm-phase2_url',
} as const;

/** The first value of `key` as text ('' when absent), stripped of what DTM strips (`dtmimp.Escape`). */
export const metadataValue = (md: MetadataLike, key: string): string => {
  const [first] = md.get(key);
  const text = typeof first === 'string' ? first : Buffer.isBuffer(first) ? first.toString('utf8') : '';
  return text.replace(/[\n\r;]/g, '');
};

/**
 * The branch a gRPC call is about, from its metadata (`dtm-gid`, `dtm-trans_type`, `dtm-branch_id`, `dtm-op`,
 * and `dtm-dtm`, `dtm-phase2_url` when present): DTM's `TransBaseFromGrpc`.
 *
 * @throws {@link DtmBadRequest} when gid, trans_type, branch_id or op is missing ({@link grpcRmHandler} answers
 * INVALID_ARGUMENT)
 */
export const grpcBranchInfo = (md: MetadataLike): BranchInfo => {
  const info: BranchInfo = {
    gid: metadataValue(md, DTM_METADATA.gid),
    transType: metadataValue(md, DTM_METADATA.transType),
    branchId: metadataValue(md, DTM_METADATA.branchId),
    op: metadataValue(md, DTM_METADATA.op),
    dtm: metadataValue(md, DTM_METADATA.dtm),
    phase2Url: metadataValue(md, DTM_METADATA.phase2Url),
  };
  if (!info.gid || !info.transType || !info.branchId || !info.op) {
    throw new DtmBadRequest(
      `not a branch call: dtm-gid '${info.gid}', dtm-trans_type '${info.transType}', dtm-branch_id '${info.branchId}', dtm-op '${info.op}'`,
    );
  }
  return info;
};
