import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaMessageBus } from '@dtm-ts/adapters';
import { uniqueGid, useKafkaTmFixture } from '../support/tm-harness';
import { waitFor as waitUntil } from '../support/wait';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const fx = useKafkaTmFixture();
let consumer: ChildProcess | undefined;

afterAll(() => {
  consumer?.kill('SIGKILL');
});

type Line = Record<string, unknown> & { event: string };

describe('example consumer service (examples/kafka-consumer)', () => {
  it('when the TM delivers a message and the same record arrives again, then the service handles it once and reports the duplicate', async () => {
    const topic = `example-${randomUUID().slice(0, 8)}`;
    const lines: Line[] = [];
    let err = '';
    consumer = spawn(process.execPath, ['--import', 'tsx', 'examples/kafka-consumer/main.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        KAFKA_BROKERS: fx.kafka.bootstrap,
        KAFKA_TOPICS: topic,
        KAFKA_GROUP_ID: `example-${topic}`,
        KAFKA_FROM_BEGINNING: 'true',
        // The mock holds a fetch for its whole wait even when records arrive.
        KAFKA_MAX_WAIT_MS: '100',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    consumer.stdout!.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Line);
    });
    consumer.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    const exited = new Promise<number | null>((r) => consumer!.once('exit', (code) => r(code)));
    const waitFor = (what: string, ok: () => boolean, timeout = 30_000) =>
      waitUntil(ok, () => `${what} not seen; lines ${JSON.stringify(lines)}; stderr ${err}`, { timeout });
    await waitFor('ready', () => lines.some((l) => l.event === 'ready'));

    const gid = uniqueGid('example');
    const res = await fx.dtm.post('/submit', {
      gid,
      trans_type: 'msg',
      steps: [{ action: `kafka://${topic}` }],
      payloads: ['{"amount":30}'],
    });
    expect(res.status).toBe(200);
    await waitFor('handled', () => lines.some((l) => l.event === 'handled'));
    // The same delivery again, as when the TM retries after a lost acknowledgement.
    const bus = new KafkaMessageBus({ brokers: fx.kafka.brokers });
    await bus.publish(
      {
        topic,
        key: gid,
        headers: { 'dtm-gid': gid, 'dtm-branch-id': '01', 'dtm-trans-type': 'msg' },
        value: Buffer.from('{"amount":30}'),
      },
      { timeoutMs: 10_000 },
    );
    await bus.close();
    await waitFor('duplicate', () => lines.some((l) => l.event === 'duplicate'));

    consumer.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.filter((l) => l.event === 'handled')).toEqual([
      expect.objectContaining({ gid, branch_id: '01', topic, value: '{"amount":30}' }),
    ]);
    expect(lines.find((l) => l.event === 'stopped')).toMatchObject({ handled: 1, duplicates: 1, foreign: 0 });
  });
});
