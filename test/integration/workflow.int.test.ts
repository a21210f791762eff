import { describe, expect, it } from 'vitest';
import { uniqueGid, useTmFixture } from '../support/tm-harness';
import { waitFor } from '../support/wait';

const fx = useTmFixture();

const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

const workflow = (gid: string, extra: Record<string, unknown> = {}) => ({
  gid,
  trans_type: 'workflow',
  query_prepared: fx.peer.url(`${gid}/resume`),
  custom_data: JSON.stringify({ name: 'transfer', data: b64('{"amount":30}') }),
  ...extra,
});
const step = (gid: string, branchId: string, op: string, status: string, data = '') =>
  fx.dtm.post('/registerBranch', { gid, trans_type: 'workflow', branch_id: branchId, op, status, data });

describe('workflow (reference §4.5)', () => {
  it('when prepareWorkflow is called, then it answers the new transaction; again, with the progress recorded since', async () => {
    const gid = uniqueGid('wf');
    const first = await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 60 }));
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      transaction: { gid, status: 'prepared', rollback_reason: '', result: '' },
      progresses: [],
    });
    expect(await step(gid, '01', 'action', 'succeed', '{"out":1}')).toEqual(ok);
    expect(await step(gid, '02', 'compensate-x', 'failed', 'boom')).toEqual(ok);
    const again = await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 60 }));
    expect(again.status).toBe(200);
    expect(again.body).toEqual({
      transaction: { gid, status: 'prepared', rollback_reason: '', result: '' },
      progresses: [
        { status: 'succeed', bin_data: b64('{"out":1}'), branch_id: '01', op: 'action' },
        { status: 'failed', bin_data: b64('boom'), branch_id: '02', op: 'compensate-x' },
      ],
    });
    const q = await fx.dtm.query(gid);
    expect(q.transaction).toMatchObject({ gid, trans_type: 'workflow', status: 'prepared' });
    expect(q.branches.map((b) => `${b.branch_id}/${b.op}/${b.status}`)).toEqual([
      '01/action/succeed',
      '02/compensate-x/failed',
    ]);
  });

  it('when registerBranch is called, then exactly one row is stored, with the given status', async () => {
    const gid = uniqueGid('wf-reg');
    await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 60 }));
    expect(await step(gid, '01', 'action', 'prepared', 'x')).toEqual(ok);
    // The same row again (a retry after a lost answer) is fine; another status for it is not.
    expect(await step(gid, '01', 'action', 'prepared', 'x')).toEqual(ok);
    expect((await step(gid, '01', 'action', 'succeed', 'x')).status).toBe(422);
    const q = await fx.dtm.query(gid);
    expect(q.branches).toHaveLength(1);
    expect(q.branches[0]).toMatchObject({ branch_id: '01', op: 'action', status: 'prepared', bin_data: b64('x') });
  });

  it('when submitted with status succeed, then it succeeds at once with its result', async () => {
    const gid = uniqueGid('wf-ok');
    await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 60 }));
    await step(gid, '01', 'action', 'succeed');
    const res = await fx.dtm.post('/submit', {
      ...workflow(gid),
      req_extra: { status: 'succeed', result: b64('done') },
    });
    expect(res).toEqual(ok);
    const tx = await fx.dtm.waitFor(gid, 'succeed', 3000);
    expect(tx.result).toBe(b64('done'));
    const again = await fx.dtm.post('/prepareWorkflow', workflow(gid));
    expect(again.body.transaction).toEqual({ gid, status: 'succeed', rollback_reason: '', result: b64('done') });
    // Finished: a second submit is refused.
    const twice = await fx.dtm.post('/submit', { ...workflow(gid), req_extra: { status: 'failed' } });
    expect(twice.status).toBe(409);
    expect(String(twice.body.message)).toContain("current status 'succeed'");
  });

  it('when submitted with status failed, then it fails with the rollback reason and nothing is called', async () => {
    const gid = uniqueGid('wf-fail');
    await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 60 }));
    await step(gid, '01', 'action', 'failed');
    expect(
      await fx.dtm.post('/submit', {
        gid,
        trans_type: 'workflow',
        req_extra: { status: 'failed', rollback_reason: 'insufficient balance' },
      }),
    ).toEqual(ok);
    const tx = await fx.dtm.waitFor(gid, 'failed', 3000);
    expect(tx.rollback_reason).toBe('insufficient balance');
    expect(fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`))).toEqual([]);
  });

  it('while unfinished, then the callback is called about every retry_interval with op = name and the input, until submit', async () => {
    const gid = uniqueGid('wf-resume');
    fx.peer.script(`${gid}/resume`, [500, 425, 200]);
    // A companion, never submitted, is called back on the same schedule: the live marker below.
    const companion = uniqueGid('wf-companion');
    await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 1 }));
    await fx.dtm.post('/prepareWorkflow', workflow(companion, { retry_interval: 1 }));
    const calls = await waitFor(() => {
      const c = fx.peer.callsTo(`${gid}/resume`);
      return c.length >= 3 && c;
    }, 'three callbacks (500, 425, 200)');
    for (const c of calls) {
      expect(c.method).toBe('POST');
      expect(c.query).toEqual({ gid, trans_type: 'workflow', branch_id: '00', op: 'transfer' });
      expect(JSON.parse(c.body)).toEqual({ amount: 30 });
    }
    for (let i = 1; i < calls.length; i++) {
      const gap = calls[i]!.at - calls[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(800);
      expect(gap).toBeLessThan(2500);
    }
    // Whatever the answers (500, 425, 200), the workflow stays prepared: only submit finishes it.
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('prepared');
    expect(await fx.dtm.post('/submit', { gid, trans_type: 'workflow', req_extra: { status: 'succeed' } })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 3000);
    const n = fx.peer.callsTo(`${gid}/resume`).length;
    // Two more callbacks of the companion: two intervals passed, so any callback still due was made.
    const companionCalls = fx.peer.callsTo(`${companion}/resume`).length;
    await waitFor(() => fx.peer.callsTo(`${companion}/resume`).length >= companionCalls + 2, 'two companion callbacks');
    // At most one callback was in flight when the submit landed.
    expect(fx.peer.callsTo(`${gid}/resume`).length).toBeLessThanOrEqual(n + 1);
    const settled = fx.peer.callsTo(`${gid}/resume`).length;
    await waitFor(
      () => fx.peer.callsTo(`${companion}/resume`).length >= companionCalls + 4,
      'two more companion callbacks',
    );
    expect(fx.peer.callsTo(`${gid}/resume`).length).toBe(settled);
  });

  it('when the workflow has no input, then the callback is a GET with no body', async () => {
    const gid = uniqueGid('wf-get');
    await fx.dtm.post(
      '/prepareWorkflow',
      workflow(gid, { retry_interval: 1, custom_data: JSON.stringify({ name: 'noinput' }) }),
    );
    const calls = await waitFor(() => {
      const c = fx.peer.callsTo(`${gid}/resume`);
      return c.length >= 1 && c;
    }, 'the first callback');
    expect(calls[0]).toMatchObject({ method: 'GET', body: '' });
    expect(calls[0]!.query.op).toBe('noinput');
    await fx.dtm.post('/submit', { gid, trans_type: 'workflow', req_extra: { status: 'succeed' } });
  });

  it('when the input is bad, then it is refused with 4xx', async () => {
    const gid = uniqueGid('wf-bad');
    const bad = async (path: string, body: unknown) => {
      const r = await fx.dtm.post(path, body);
      expect(r.status, `${path} ${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    };
    await bad('/prepareWorkflow', { gid, trans_type: 'workflow', query_prepared: fx.peer.url('x') });
    await bad('/prepareWorkflow', workflow(gid, { custom_data: 'not json' }));
    await bad('/prepareWorkflow', workflow(gid, { custom_data: '{"data":"eA=="}' }));
    await bad('/prepareWorkflow', workflow(gid, { custom_data: '{"name":"n","data":"!!"}' }));
    await bad('/prepareWorkflow', workflow(gid, { query_prepared: 'ftp://x' }));
    await bad('/prepareWorkflow', { ...workflow(gid), trans_type: 'saga' });
    await bad('/prepareWorkflow', { trans_type: 'workflow' });
    await fx.dtm.post('/prepareWorkflow', workflow(gid, { retry_interval: 60 }));
    await bad('/registerBranch', { gid, trans_type: 'workflow', branch_id: '01', status: 'succeed' });
    await bad('/registerBranch', { gid, trans_type: 'workflow', branch_id: '01', op: 'a', status: 'done' });
    await bad('/registerBranch', { gid, trans_type: 'workflow', branch_id: '01', op: 'a', status: 1 });
    await bad('/submit', { gid, trans_type: 'workflow' });
    await bad('/submit', { gid, trans_type: 'workflow', req_extra: { status: 'submitted' } });
    await bad('/submit', { gid, trans_type: 'workflow', req_extra: { status: 1 } });
    await bad('/submit', { gid: uniqueGid('wf-none'), trans_type: 'workflow', req_extra: { status: 'succeed' } });
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('prepared');
  });
});
