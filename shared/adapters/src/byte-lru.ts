/**
 * Rough heap size of a plain value, in bytes: strings count two bytes a character, numbers eight, and each
 * object, array, Set or Map a fixed overhead plus its contents. Meant for cache budgets, not for accounting:
 * it errs high (shared sub-objects count once per holder).
 */
export const approxBytes = (value: unknown): number => {
  switch (typeof value) {
    case 'string':
      return 16 + 2 * value.length;
    case 'number':
    case 'boolean':
    case 'bigint':
      return 8;
    case 'object': {
      if (value === null) return 8;
      let bytes = 32;
      if (value instanceof Map) for (const [k, v] of value) bytes += approxBytes(k) + approxBytes(v);
      else if (value instanceof Set || Array.isArray(value))
        for (const v of value as Iterable<unknown>) bytes += approxBytes(v);
      else {
        // for…in, not Object.entries: this runs on every cached state and should not allocate a pair per key.
        const record = value as Record<string, unknown>;
        for (const k in record) if (Object.hasOwn(record, k)) bytes += 16 + 2 * k.length + approxBytes(record[k]);
      }
      return bytes;
    }
    default:
      return 8;
  }
};

/**
 * A least-recently-used map bounded by bytes, not by count: what it holds (keys and values, as `sizeOf`
 * weighs them) never exceeds `maxBytes`, however large single entries get. An entry larger than the whole
 * budget is not kept.
 */
export class ByteLru<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private used = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (key: K, value: V) => number = (k, v) => approxBytes(k) + approxBytes(v),
  ) {
    if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be ≥ 0, got ${maxBytes}`);
  }

  /** Bytes held now, as `sizeOf` weighs them. */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.map.size;
  }

  /** The value of `key`, marking it recently used. */
  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  /** Stores `value` under `key`, then drops the least recently used entries until the budget holds. */
  set(key: K, value: V): void {
    this.delete(key);
    const bytes = this.sizeOf(key, value);
    if (bytes > this.maxBytes) return;
    this.map.set(key, { value, bytes });
    this.used += bytes;
    while (this.used > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): void {
    const hit = this.map.get(key);
    if (!hit) return;
    this.map.delete(key);
    this.used -= hit.bytes;
  }
}
