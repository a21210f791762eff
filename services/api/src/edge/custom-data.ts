import { orderCycle, type SagaOrdering, type TransDefinition } from '@dtm-ts/domain';
import { BadRequest } from '../http/bad-request';
import { BASE64, BOUNDS, hasControl, isWellFormed, SECONDS } from './wire';

/** `custom_data` is JSON text holding an object, whatever the mode (DTM's quirk: an object inside a string). */
const customDataObject = (customData: string): Record<string, unknown> => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(customData);
  } catch {
    throw new BadRequest('custom_data must be JSON text');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BadRequest('custom_data must be a JSON object');
  }
  return parsed as Record<string, unknown>;
};

/** Saga `custom_data`: `{"concurrent":true,"orders":{"1":[0]}}`; orders that could never run are refused. */
export const sagaOrdering = (customData: string, n: number): SagaOrdering => {
  if (customData === '') return { concurrent: false, orders: {} };
  const parsed = customDataObject(customData);
  const concurrent = parsed.concurrent ?? false;
  if (typeof concurrent !== 'boolean') throw new BadRequest('custom_data.concurrent must be true or false');
  const rawOrders = parsed.orders ?? {};
  if (typeof rawOrders !== 'object' || rawOrders === null || Array.isArray(rawOrders)) {
    throw new BadRequest('custom_data.orders must be an object');
  }
  const orders: Record<number, number[]> = {};
  for (const [k, v] of Object.entries(rawOrders)) {
    const i = Number(k);
    if (!/^\d+$/.test(k) || i >= n) {
      throw new BadRequest(`custom_data.orders has step ${k.slice(0, 20)}, but there are ${n} steps`, 422);
    }
    if (!Array.isArray(v) || v.some((j) => !Number.isInteger(j) || j < 0 || j >= n || j === i)) {
      throw new BadRequest(`custom_data.orders.${k} must list other step indexes below ${n}`, 422);
    }
    orders[i] = [...new Set(v as number[])];
  }
  const cycle = orderCycle(orders, n);
  if (cycle !== null) throw new BadRequest(`custom_data.orders has a cycle through step ${cycle}`, 422);
  return { concurrent, orders: concurrent ? orders : {} };
};

/** Msg `custom_data`: `{"delay":<seconds>}` before delivery starts. */
export const msgDelay = (customData: string): number => {
  if (customData === '') return 0;
  const delay = customDataObject(customData).delay ?? 0;
  if (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > SECONDS.delay) {
    throw new BadRequest(`custom_data.delay must be a whole number of seconds from 0 to ${SECONDS.delay}`, 422);
  }
  return delay;
};

/**
 * Workflow `custom_data`: `{"name":…,"data":<base64>}`. `name` becomes the op of the resume callback
 * (a query parameter and a metric label), so it is an identifier; `data` (decoded) is its body. Empty
 * custom_data gives no workflow (a submit need not repeat it).
 */
export const workflowCustomData = (customData: string): TransDefinition['workflow'] => {
  if (customData === '') return undefined;
  const { name, data } = customDataObject(customData);
  if (typeof name !== 'string' || name === '') {
    throw new BadRequest('custom_data.name (the workflow name) is required', 422);
  }
  // JSON escapes inside custom_data can spell a lone surrogate the outer text does not show.
  if (!isWellFormed(name)) throw new BadRequest('custom_data.name is not well-formed Unicode (a lone surrogate)');
  if (name.length > BOUNDS.workflowName) {
    throw new BadRequest(`custom_data.name is longer than ${BOUNDS.workflowName} characters`, 422);
  }
  if (hasControl(name)) throw new BadRequest('custom_data.name has a control character', 422);
  if (data === undefined || data === null) return { name, input: '' };
  if (typeof data !== 'string' || !BASE64.test(data)) throw new BadRequest('custom_data.data must be base64 text', 422);
  // As before: bytes that are not UTF-8 read as U+FFFD, so the callback body is always sendable text.
  return { name, input: Buffer.from(data, 'base64').toString('utf8') };
};
