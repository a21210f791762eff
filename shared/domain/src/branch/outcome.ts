import type { BranchOutcome } from '../global-transaction/commands';

/**
 * Interprets an HTTP answer of a branch by the reference's rules (§3.2), in this order:
 * 425 or a body containing ONGOING → ongoing; 409 or a body containing FAILURE → failure;
 * any other status than 200 → error (retried); else success. Transport errors never reach here.
 */
export const classifyHttp = (status: number, body: string): BranchOutcome => {
  const detail = body.length > 512 ? `${body.slice(0, 512)}…` : body;
  if (status === 425 || body.includes('ONGOING')) return { kind: 'ongoing', detail: detail || `HTTP ${status}` };
  if (status === 409 || body.includes('FAILURE')) return { kind: 'failure', detail };
  if (status !== 200) return { kind: 'error', detail: `HTTP ${status}: ${detail}` };
  return { kind: 'success' };
};
