import { describe, expect, it } from 'vitest';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

const fx = useTmFixture({ finishedRetentionS: 1 });

const listed = async (gid: string): Promise<boolean> => {
  const res = await fx.dtm.get('/all?limit=1000');
  return (res.body.transactions as { gid: string }[]).some((t) => t.gid === gid);
};

describe('retention of finished transactions', () => {
  it('when a finished transaction is older than the retention, then it leaves /all but its history stays in the log', async () => {
    const done = uniqueGid('ret-done');
    const open = uniqueGid('ret-open');
    fx.peer.script(`${open}/a0`, [425]);
    await fx.dtm.post('/submit', sagaBody(done, [{ action: fx.peer.url(`${done}/a0`), compensate: '' }]));
    await fx.dtm.post(
      '/submit',
      sagaBody(open, [{ action: fx.peer.url(`${open}/a0`), compensate: '' }], { retry_interval: 60 }),
    );
    await fx.dtm.waitFor(done, 'succeed');
    await expect.poll(() => listed(done), { timeout: 3_000 }).toBe(true);
    // Gone from the read model about a second after it ended; the unfinished one stays.
    await expect.poll(() => listed(done), { timeout: 5_000 }).toBe(false);
    expect(await listed(open)).toBe(true);
    expect((await fx.dtm.query(done)).transaction).toMatchObject({ gid: done, status: 'succeed' });
    const { events } = await fx.tm.infra.log.read(done);
    expect(events.at(-1)?.type).toBe('TransactionSucceeded');
    // The list index is compacted too (by the worker's timer or now), and keeps the unfinished one.
    await fx.tm.worker.compact();
    const members = await indexMembers();
    expect(members.some((m) => m.endsWith(`|${done}`))).toBe(false);
    expect(members.some((m) => m.endsWith(`|${open}`))).toBe(true);
  });
});

const indexMembers = async (): Promise<string[]> => {
  const keys = await fx.tm.infra.redis.keys(`${fx.tm.infra.config.prefix}:*:rm-idx`);
  const out: string[] = [];
  for (const k of keys) out.push(...(await fx.tm.infra.redis.zrange(k, 0, -1)));
  return out;
};
