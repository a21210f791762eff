import { describe, expect, it } from 'vitest';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

describe("DTM's admin KV endpoints (scanKV, queryKV) and the console's JSON", () => {
  const f = useTmFixture();
  const sub = async (topic: string, path: string, remark = '') => {
    const r = await f.dtm.get(
      `/subscribe?topic=${topic}&url=${encodeURIComponent(f.peer.url(path))}&remark=${encodeURIComponent(remark)}`,
    );
    expect(r.status).toBe(200);
  };
  const del = async (topic: string) =>
    (await fetch(`${f.tm.url}/api/dtmsvr/topic/${topic}`, { method: 'DELETE' })).status;
  const row = (k: string, subscribers: { url: string; remark: string }[], version: number) => ({
    cat: 'topics',
    k,
    v: JSON.stringify(subscribers),
    version,
    create_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    update_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
  });

  it('when topics exist, then scanKV pages them by name with next_position, skipping deleted ones', async () => {
    await sub('kv-b', 'b1', 'first');
    await sub('kv-b', 'b2');
    await sub('kv-a', 'a1');
    await sub('kv-c', 'c1');
    expect(await del('kv-c')).toBe(200);

    const p1 = await f.dtm.get('/scanKV?cat=topics&limit=1');
    expect(p1).toEqual({
      status: 200,
      body: { kv: [row('kv-a', [{ url: f.peer.url('a1'), remark: '' }], 1)], next_position: 'kv-a' },
    });
    const p2 = await f.dtm.get('/scanKV?cat=topics&limit=1&position=kv-a');
    expect(p2.body).toEqual({
      kv: [
        row(
          'kv-b',
          [
            { url: f.peer.url('b1'), remark: 'first' },
            { url: f.peer.url('b2'), remark: '' },
          ],
          2,
        ),
      ],
      next_position: '',
    });
    const all = await f.dtm.get('/scanKV?cat=topics');
    expect((all.body.kv as { k: string }[]).map((r) => r.k)).toEqual(['kv-a', 'kv-b']);
    expect(all.body.next_position).toBe('');
  });

  it('when a topic is asked for by key, then queryKV answers its row, or none', async () => {
    await sub('kv-q', 'q1', 'r');
    expect((await f.dtm.get('/queryKV?cat=topics&key=kv-q')).body).toEqual({
      kv: [row('kv-q', [{ url: f.peer.url('q1'), remark: 'r' }], 1)],
    });
    expect((await f.dtm.get('/queryKV?cat=topics&key=kv-none')).body).toEqual({ kv: [] });
    // A deleted topic subscribed again starts over at version 1.
    expect(await del('kv-q')).toBe(200);
    expect((await f.dtm.get('/queryKV?cat=topics&key=kv-q')).body).toEqual({ kv: [] });
    await sub('kv-q', 'q2');
    expect((await f.dtm.get('/queryKV?cat=topics&key=kv-q')).body).toEqual({
      kv: [row('kv-q', [{ url: f.peer.url('q2'), remark: '' }], 1)],
    });
    const keys = ((await f.dtm.get('/queryKV?cat=topics')).body.kv as { k: string }[]).map((r) => r.k);
    expect(keys).toContain('kv-q');
  });

  it('when the category is missing, then 400; an unknown category lists nothing, as in DTM', async () => {
    expect(await f.dtm.get('/scanKV')).toEqual({ status: 400, body: { message: 'cat is required' } });
    expect(await f.dtm.get('/queryKV?key=x')).toEqual({ status: 400, body: { message: 'cat is required' } });
    expect(await f.dtm.get('/scanKV?cat=other')).toEqual({ status: 200, body: { kv: [], next_position: '' } });
    expect(await f.dtm.get('/queryKV?cat=other&key=x')).toEqual({ status: 200, body: { kv: [] } });
    expect((await f.dtm.get('/scanKV?cat=topics&limit=0')).status).toBe(400);
  });

  it("when transactions are unfinished, then the console's unfinished view lists them by due time and counts them", async () => {
    f.peer.script('down', [500]);
    const gids = [uniqueGid('u1'), uniqueGid('u2')];
    for (const gid of gids) {
      const r = await f.dtm.post(
        '/submit',
        sagaBody(gid, [{ action: f.peer.url('down'), compensate: f.peer.url('x') }]),
      );
      expect(r.status).toBe(200);
    }
    const ok = uniqueGid('done');
    await f.dtm.post('/submit', sagaBody(ok, [{ action: f.peer.url('fine'), compensate: f.peer.url('x') }]));
    await f.dtm.waitFor(ok, 'succeed');
    type Unfinished = {
      transactions: { gid: string; status: string; wake_time: string; overdue_s: number }[];
      total: number;
    };
    const read = async () => (await (await fetch(`${f.tm.url}/api/console/unfinished`)).json()) as Unfinished;
    const deadline = Date.now() + 20_000;
    let u = await read();
    while (u.total < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      u = await read();
    }
    expect(u.total).toBe(2);
    expect(u.transactions.map((t) => t.gid).sort()).toEqual([...gids].sort());
    expect(u.transactions.every((t) => t.status === 'submitted' && t.overdue_s >= 0)).toBe(true);
    const due = u.transactions.map((t) => Date.parse(t.wake_time));
    expect(due).toEqual([...due].sort((a, b) => a - b));

    const counts = (await (await fetch(`${f.tm.url}/api/console/counts`)).json()) as Record<string, unknown>;
    expect(counts).toMatchObject({ complete: true, unfinished: 2, counts: { submitted: 2, succeed: 1 } });
    expect((await fetch(`${f.tm.url}/api/console/unfinished?limit=0`)).status).toBe(400);
    expect((await fetch(`${f.tm.url}/api/console/tx`)).status).toBe(400);
  });
});
