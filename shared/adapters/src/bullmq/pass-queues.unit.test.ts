import { describe, expect, it } from 'vitest';
import { partitionOf } from '../redis/keys';
import { passQueueNames, passQueueOf } from './pass-scheduler';

describe('pass queue layout', () => {
  it('when on one Redis with one queue, then the name is the untagged one of before clusters', () => {
    expect(passQueueNames({ prefix: 'dtm', partitions: 4, queues: 1, hashTagged: false })).toEqual(['dtm-passes']);
  });

  it('when on a cluster, then queue N carries the hash tag of partition N', () => {
    expect(passQueueNames({ prefix: 'dtm', partitions: 12, queues: 3, hashTagged: true })).toEqual([
      'dtm-passes-{p0}',
      'dtm-passes-{p1}',
      'dtm-passes-{p2}',
    ]);
    expect(passQueueNames({ prefix: 'x', partitions: 4, queues: 1, hashTagged: true })).toEqual(['x-passes-{p0}']);
  });

  it("when routing a gid, then its queue is its partition's, modulo the queues", () => {
    const layout = { partitions: 12, queues: 5 };
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 500; i++) {
      const gid = `gid-${i}`;
      const q = passQueueOf(gid, layout);
      expect(q).toBe(partitionOf(gid, 12) % 5);
      counts[q]!++;
    }
    // Every queue gets passes.
    expect(counts.every((n) => n > 0)).toBe(true);
    expect(passQueueOf('anything', { partitions: 4, queues: 1 })).toBe(0);
  });
});
