import type { BranchRequest } from '@dtm-ts/ports';

/** The bytes a branch call carries: a gRPC transaction stores the base64 of its payloads, the others their text. */
export const payloadBytes = (req: Pick<BranchRequest, 'data' | 'protocol'>): Buffer =>
  req.protocol === 'grpc' ? Buffer.from(req.data, 'base64') : Buffer.from(req.data, 'utf8');

/**
 * DTM's `workflow.WorkflowData { bytes Data = 1; }` (client/workflow/wfpb/wf.proto), the body of a workflow's
 * resume callback over gRPC: field 1 with wire type 2, its length as a varint, the bytes. Empty input is the
 * empty message (proto3 leaves default fields out).
 */
export const workflowDataMessage = (input: Buffer): Buffer => {
  if (input.length === 0) return Buffer.alloc(0);
  const len: number[] = [];
  for (let n = input.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n % 128) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), input]);
};
