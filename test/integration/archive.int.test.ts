import { describe, expect, it } from 'vitest';
import { FileArchive, scanKeys } from '@dtm-ts/adapters';
import { replay } from '@dtm-ts/worker';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

const fx = useTmFixture({ finishedRetentionS: 1 });

/** Every Redis key that names `gid`, by SCAN. */
const keysNaming = async (gid: string): Promise<string[]> => {
  const out: string[] = [];
  for await (const keys of scanKeys(fx.tm.infra.redis, `${fx.tm.infra.config.prefix}:*`)) {
    out.push(...keys.filter((k) => k.endsWith(`:${gid}`)));
  }
  return out;
};

const replayed = async (gid: string): Promise<string> => {
  let out = '';
  await replay({ log: fx.tm.infra.log, feed: fx.tm.infra.log }, { gid, all: false, json: true }, (t) => (out += t));
  return out;
};

describe('archive of finished transactions (Redis log)', () => {
  it('when a finished saga outlives the retention, then its keys leave Redis and /events, /query and replay answer as before', async () => {
    const gid = uniqueGid('arch');
    fx.peer.script(`${gid}/a1`, [409]);
    const steps = [0, 1].map((i) => ({ action: fx.peer.url(`${gid}/a${i}`), compensate: fx.peer.url(`${gid}/c${i}`) }));
    await fx.dtm.post('/submit', sagaBody(gid, steps));
    await fx.dtm.waitFor(gid, 'failed');
    const before = {
      events: (await fx.dtm.get(`/events?gid=${gid}`)).body,
      query: await fx.dtm.query(gid),
      replay: await replayed(gid),
    };
    expect((await keysNaming(gid)).some((k) => k.includes(':tx:'))).toBe(true);
    // Its read-model row has no expiry of its own: the archiver drops it with the stream, at the same deadline.
    const row = (await keysNaming(gid)).find((k) => k.includes(':rm:'));
    expect(row).toBeDefined();
    expect(await fx.tm.infra.redis.pttl(row!)).toBe(-1);

    // Retention is 1 s; the worker's retention run archives it (here also asked for directly).
    await expect
      .poll(
        async () => {
          await fx.tm.worker.compact();
          // Only the short-lived marker that refuses a new stream under this gid may stay: its lease, held by 'archived'.
          return (await keysNaming(gid)).filter((k) => !k.includes(':lease:'));
        },
        { timeout: 20_000, interval: 250 },
      )
      .toEqual([]);
    const marker = (await keysNaming(gid)).find((k) => k.includes(':lease:'));
    expect(marker && (await fx.tm.infra.redis.get(marker))).toBe('archived');
    const archive = new FileArchive(fx.tm.infra.config.archiveDir!);
    expect(await archive.has(gid)).toBe(true);

    expect((await fx.dtm.get(`/events?gid=${gid}`)).body).toEqual(before.events);
    expect(await fx.dtm.query(gid)).toEqual(before.query);
    expect(await replayed(gid)).toBe(before.replay);

    // Submitting the gid again starts nothing new: the archived history stays what it was.
    await fx.dtm.post('/submit', sagaBody(gid, steps));
    expect((await keysNaming(gid)).filter((k) => k.includes(':tx:'))).toEqual([]);
    expect((await fx.dtm.get(`/events?gid=${gid}`)).body).toEqual(before.events);
  });
});
