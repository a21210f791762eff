import { sagaBranchId, type BranchDef, type TransDefinition } from './types';

/**
 * The branch rows a definition stores at prepare/submit, as DTM generates them: saga step i →
 * `compensate` then `action`, both `%02d`(i+1) with the step's payload; msg step i → one `action`
 * row (a `topic://` row is expanded into one row per subscriber by the caller); tcc, xa and
 * workflow → none (their branches arrive through registerBranch).
 */
export const branchRowsOf = (definition: TransDefinition): BranchDef[] => {
  const { transType, steps, payloads } = definition;
  if (transType !== 'saga' && transType !== 'msg') return [];
  return steps.flatMap((s, i): BranchDef[] => {
    const data = payloads[i] ?? '';
    const action: BranchDef = { branchId: sagaBranchId(i), op: 'action', url: s.action ?? '', data };
    if (transType === 'msg') return [action];
    return [{ branchId: sagaBranchId(i), op: 'compensate', url: s.compensate ?? '', data }, action];
  });
};

/**
 * A step on a cycle of saga `orders` (step i waits for every step in `orders[i]`), or `null` when
 * there is none. A cycle would leave its steps waiting forever, so such a saga must be refused.
 */
export const orderCycle = (orders: Readonly<Record<number, readonly number[]>>, steps: number): number | null => {
  const state = new Map<number, 'visiting' | 'done'>();
  // Iterative depth-first search: a long chain of orders must not overflow the stack.
  for (let root = 0; root < steps; root++) {
    if (state.has(root)) continue;
    const stack: { step: number; next: number }[] = [{ step: root, next: 0 }];
    state.set(root, 'visiting');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = orders[top.step] ?? [];
      if (top.next >= deps.length) {
        state.set(top.step, 'done');
        stack.pop();
        continue;
      }
      const dep = deps[top.next++]!;
      const seen = state.get(dep);
      if (seen === 'visiting') return dep;
      if (seen === undefined) {
        state.set(dep, 'visiting');
        stack.push({ step: dep, next: 0 });
      }
    }
  }
  return null;
};
