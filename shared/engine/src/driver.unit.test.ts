import { describe, expect, it } from 'vitest';
import { fold, type BranchOutcome, type TxEvent } from '@dtm-ts/domain';
import { VersionConflict } from '@dtm-ts/ports';
import { Driver } from './driver';
import {
  driverWith,
  gate,
  manualClock,
  MemoryLease,
  msgOf,
  ProjectingMemoryLog,
  sagaOf,
  submit,
  T0,
} from './driver-fakes.unit-support';
import { waitKey } from './views';

const reset = (t: number): TxEvent => ({ type: 'RetryScheduleReset', data: { at: new Date(t).toISOString() } });

describe('driver', () => {
  it('when a saga runs, then each answer is appended before the next step is called', async () => {
    const { driver, log, rm } = driverWith();
    const seenAtCall: string[][] = [];
    for (const url of ['http://rm/a0', 'http://rm/a1']) {
      rm.replies.set(url, () => {
        seenAtCall.push(log.types('g1'));
        return { kind: 'success' };
      });
    }
    await submit(driver, sagaOf('g1', 2));
    const pass = await driver.runPass('g1');
    expect(pass.state.status).toBe('succeed');
    expect(rm.urls()).toEqual(['http://rm/a0', 'http://rm/a1']);
    expect(seenAtCall).toEqual([
      ['TransactionPrepared', 'TransactionSubmitted'],
      ['TransactionPrepared', 'TransactionSubmitted', 'BranchSucceeded'],
    ]);
    expect(log.types('g1').at(-1)).toBe('TransactionSucceeded');
  });

  it('when another writer appends between the read and the append, then the driver re-reads and decides again', async () => {
    const { driver, log, clock } = driverWith();
    await submit(driver, sagaOf('g1', 1));
    let slipped = false;
    log.beforeAppend = (gid) => {
      // Once, just before the driver records the answer: the API resets the retry schedule.
      if (!slipped) log.push(gid, reset(clock.now()));
      slipped = true;
    };
    const pass = await driver.runPass('g1');
    expect(pass.state.status).toBe('succeed');
    // The other writer's event is kept, the answer recorded once after it: nothing overwritten, nothing doubled.
    expect(log.types('g1')).toEqual([
      'TransactionPrepared',
      'TransactionSubmitted',
      'RetryScheduleReset',
      'BranchSucceeded',
      'TransactionSucceeded',
    ]);
    expect(pass.version).toBe(4);
  });

  it('when a command meets a stream that moved, then it is decided again against the stream as it is', async () => {
    const { driver, log } = driverWith();
    const saga = sagaOf('g1', 1);
    await submit(driver, saga);
    // A second submit of the same gid, first decided as if new: the conflict sends it to read the stream.
    const again = await driver.execute(
      'g1',
      (now) => ({ type: 'SubmitGlobalTransaction', data: saga, metadata: { now } }),
      { assumeNew: true },
    );
    expect(again.appended).toBe(0);
    expect(again.state.status).toBe('submitted');
    expect(log.types('g1')).toEqual(['TransactionPrepared', 'TransactionSubmitted']);
  });

  it('when every append conflicts, then it gives up with the conflict instead of looping for ever', async () => {
    const { driver, log, clock } = driverWith();
    await submit(driver, sagaOf('g1', 1));
    log.beforeAppend = (gid) => log.push(gid, reset(clock.now()));
    await expect(
      driver.execute('g1', (now) => ({ type: 'ResetNextCronTime', data: { gid: 'g1' }, metadata: { now } })),
    ).rejects.toBeInstanceOf(VersionConflict);
  });

  it('when a concurrent step fails while another is in flight, then no compensation starts before that call ended', async () => {
    const { driver, log, rm } = driverWith();
    const slow = gate<{ kind: 'success' }>();
    rm.replies.set('http://rm/a0', () => slow.promise);
    rm.replies.set('http://rm/a1', () => ({ kind: 'failure', detail: 'no' }));
    await submit(driver, sagaOf('g1', 2, { concurrent: true, orders: {} }));
    const pass = driver.runPass('g1');
    // The refusal is recorded (the saga is aborting) while a0 is still running.
    await expect.poll(() => log.types('g1')).toContain('TransactionAborting');
    expect(rm.urls()).toEqual(['http://rm/a0', 'http://rm/a1']);
    slow.open({ kind: 'success' });
    const result = await pass;
    expect(result.state.status).toBe('failed');
    // Compensations only after a0's answer, in reverse order; a1's compensation too (it may have acted).
    expect(rm.urls().slice(2).sort()).toEqual(['http://rm/c0', 'http://rm/c1']);
    const a0Recorded = log.types('g1').indexOf('BranchSucceeded');
    expect(a0Recorded).toBeGreaterThan(log.types('g1').indexOf('TransactionAborting'));
  });

  it('when a branch answers ONGOING, then the pass ends and asks for the next one at the retry time', async () => {
    const { driver, scheduler, rm } = driverWith();
    rm.replies.set('http://rm/a0', () => ({ kind: 'ongoing', detail: 'later' }));
    await submit(driver, sagaOf('g1', 1));
    const pass = await driver.runPass('g1');
    expect(pass.state.status).toBe('submitted');
    expect(pass.lastOutcome).toEqual({ kind: 'ongoing', detail: 'later' });
    const retryAt = T0 + 10_000;
    expect(scheduler.passes).toEqual([{ gid: 'g1', at: retryAt, key: waitKey(pass.version, retryAt) }]);
  });

  it('when a worker whose clock lags runs a pass planned for later, then what was due then is due now', async () => {
    const { driver, scheduler, rm } = driverWith();
    let answers = 0;
    rm.replies.set('http://rm/a0', () =>
      answers++ === 0 ? { kind: 'ongoing', detail: 'later' } : { kind: 'success' },
    );
    await submit(driver, sagaOf('g1', 1));
    await driver.runPass('g1');
    const retryAt = scheduler.passes[0]!.at;
    // The clock still says T0, but the pass was planned for the retry time: the retry is made, not re-scheduled.
    const pass = await driver.runPass('g1', { notBefore: retryAt });
    expect(pass.state.status).toBe('succeed');
    expect(rm.urls()).toEqual(['http://rm/a0', 'http://rm/a0']);
    expect(scheduler.passes).toHaveLength(1);
  });

  it('when another driver holds the lease, then the pass does nothing and comes back when the lease would lapse', async () => {
    const lease = new MemoryLease();
    const { driver, scheduler, rm } = driverWith({ lease });
    await submit(driver, sagaOf('g1', 1));
    lease.steal('g1');
    const pass = await driver.runPass('g1');
    expect(pass.skipped).toBe(true);
    expect(rm.calls).toEqual([]);
    expect(scheduler.passes).toHaveLength(1);
    expect(scheduler.passes[0]!.key).toMatch(/^held\./);
    expect(scheduler.passes[0]!.at).toBe(T0 + 1000 + 50);
  });

  it('when a pass records answers, then the stream folds to the state the pass reports', async () => {
    const { driver, log } = driverWith();
    await submit(driver, sagaOf('g1', 3));
    const pass = await driver.runPass('g1');
    const { events, version } = await log.read('g1');
    expect(pass.version).toBe(version);
    expect(fold(events)).toEqual(pass.state);
  });

  describe('a pass that throws (DESIGN invariant 9)', () => {
    const undiciError = (): Error =>
      Object.assign(new TypeError('invalid transfer-encoding header'), { code: 'UND_ERR_INVALID_ARG' });

    it('when the transport throws, then PassFailed is recorded with the error and the next pass waits for the backoff', async () => {
      const { driver, log, rm, scheduler } = driverWith();
      rm.replies.set('http://rm/a0', () => {
        throw undiciError();
      });
      await submit(driver, sagaOf('g1', 1));
      const pass = await driver.runPass('g1');
      expect(pass.failure).toBe('TypeError UND_ERR_INVALID_ARG: invalid transfer-encoding header');
      const last = (await log.read('g1')).events.at(-1)!;
      expect(last).toEqual({
        type: 'PassFailed',
        data: { error: pass.failure, at: new Date(T0).toISOString(), retryAt: new Date(T0 + 10_000).toISOString() },
      });
      expect(scheduler.passes).toEqual([{ gid: 'g1', at: T0 + 10_000, key: waitKey(pass.version, T0 + 10_000) }]);
    });

    it('when it keeps throwing, then the delay doubles up to the cap, and a pass before the retry time calls nothing', async () => {
      const { driver, rm, scheduler, clock } = driverWith();
      rm.replies.set('http://rm/a0', () => {
        throw new URIError('URI malformed');
      });
      await submit(driver, sagaOf('g1', 1));
      const delays: number[] = [];
      for (let i = 0; i < 5; i++) {
        const before = clock.now();
        await driver.runPass('g1');
        const at = scheduler.passes.at(-1)!.at;
        delays.push(at - before);
        // Early: nothing is called, nothing recorded, the same wait asked for again.
        const calls = rm.calls.length;
        const early = await driver.runPass('g1');
        expect(early.failure).toBeUndefined();
        expect(rm.calls.length).toBe(calls);
        clock.set(at);
      }
      // Base interval 10 s, doubling, capped at the policy's 60 s: like a branch error.
      expect(delays).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
    });

    it('when the transaction moves again, then its earlier failures no longer count', async () => {
      const { driver, log, rm, clock } = driverWith();
      let throws = 2;
      rm.replies.set('http://rm/a0', () => {
        if (throws-- > 0) throw new URIError('URI malformed');
        return { kind: 'success' };
      });
      await submit(driver, sagaOf('g1', 2));
      for (let i = 0; i < 3; i++) {
        const pass = await driver.runPass('g1');
        const tx = pass.state.status === 'none' ? null : pass.state;
        if (tx?.passFailures.retryAt) clock.set(tx.passFailures.retryAt);
      }
      const { events } = await log.read('g1');
      expect(events.filter((e) => e.type === 'PassFailed')).toHaveLength(2);
      const state = fold(events);
      expect(state.status).toBe('succeed');
      expect(state.status !== 'none' && state.passFailures).toEqual({ count: 0, error: '', retryAt: 0 });
    });

    it('when even recording the failure fails, then the pass rethrows the original error', async () => {
      const { driver, log, rm } = driverWith();
      rm.replies.set('http://rm/a0', () => {
        throw new URIError('URI malformed');
      });
      await submit(driver, sagaOf('g1', 1));
      log.beforeAppend = () => {
        throw new Error('log unreachable');
      };
      await expect(driver.runPass('g1')).rejects.toThrow('URI malformed');
    });
  });

  describe('one driver at a time (issue 15)', () => {
    it('when a renewal finds the lease lost, then the driver makes no further branch call and hands off', async () => {
      const lease = new MemoryLease();
      const { driver, rm, scheduler } = driverWith({ lease, leaseTtlMs: 30 });
      rm.replies.set('http://rm/a0', async () => {
        // The lease lapses and another driver takes it; wait until a renewal has found out.
        lease.steal('g1');
        const seen = lease.renewals;
        while (lease.renewals === seen) await new Promise((r) => setTimeout(r, 2));
        return { kind: 'success' };
      });
      await submit(driver, sagaOf('g1', 2));
      const pass = await driver.runPass('g1');
      expect(rm.urls()).toEqual(['http://rm/a0']);
      expect(pass.handedOff).toBe(true);
      // The answer it had was still recorded: it is a fact.
      expect(pass.state.status !== 'none' && pass.state.branches.find((b) => b.url === 'http://rm/a0')?.status).toBe(
        'succeed',
      );
      expect(scheduler.passes.at(-1)).toMatchObject({ gid: 'g1', key: `${pass.version}` });
    });

    it('when the process was paused past its lease during a call, then it asks again before the next call and stops', async () => {
      const lease = new MemoryLease();
      const monotonic = manualClock(0);
      const { driver, rm } = driverWith({ lease, leaseTtlMs: 10_000, monotonic });
      rm.replies.set('http://rm/a0', () => {
        // A pause (SIGSTOP) longer than the lease: no timer ran, the lease lapsed and someone else holds it.
        monotonic.set(60_000);
        lease.steal('g1');
        return { kind: 'success' };
      });
      await submit(driver, sagaOf('g1', 2));
      const renewals = lease.renewals;
      const pass = await driver.runPass('g1');
      expect(rm.urls()).toEqual(['http://rm/a0']);
      expect(pass.handedOff).toBe(true);
      expect(lease.renewals).toBeGreaterThan(renewals);
    });

    it('when it loses an append conflict to another driver, then it re-reads and stops instead of calling on', async () => {
      const lease = new MemoryLease();
      const { driver, log, rm } = driverWith({ lease });
      rm.replies.set('http://rm/a0', () => {
        // Meanwhile another driver took the lapsed lease and recorded the same answer first.
        lease.steal('g1');
        log.push('g1', {
          type: 'BranchSucceeded',
          data: { branchId: '01', op: 'action', at: new Date(T0).toISOString() },
        });
        return { kind: 'success' };
      });
      await submit(driver, sagaOf('g1', 2));
      const pass = await driver.runPass('g1');
      expect(rm.urls()).toEqual(['http://rm/a0']);
      expect(pass.handedOff).toBe(true);
      // Nothing of its own was appended over the other driver's record.
      expect(log.types('g1')).toEqual(['TransactionPrepared', 'TransactionSubmitted', 'BranchSucceeded']);
    });

    it('when a conflict comes from the API while it still holds the lease, then it carries on', async () => {
      const lease = new MemoryLease();
      const { driver, log, rm, clock } = driverWith({ lease });
      rm.replies.set('http://rm/a0', () => {
        log.push('g1', reset(clock.now()));
        return { kind: 'success' };
      });
      await submit(driver, sagaOf('g1', 2));
      const pass = await driver.runPass('g1');
      expect(pass.state.status).toBe('succeed');
      expect(rm.urls()).toEqual(['http://rm/a0', 'http://rm/a1']);
    });

    it('when a msg submit races an in-flight check-back, then the message is delivered once', async () => {
      const lease = new MemoryLease();
      const a = driverWith({ lease });
      const { log, rm, clock } = a;
      // A second driver on the same log, RM and lease: another worker.
      const b = new Driver(a.deps);
      const msg = msgOf('m1');
      await a.driver.execute('m1', (now) => ({ type: 'PrepareGlobalTransaction', data: msg, metadata: { now } }));
      // Past the timeout: the check-back is due.
      clock.set(T0 + 40_000);
      const checkBack = gate<{ kind: 'success' }>();
      const delivery = gate<{ kind: 'success' }>();
      let deliveries = 0;
      rm.replies.set('http://rm/query', () => checkBack.promise);
      rm.replies.set('http://rm/deliver', () => {
        deliveries++;
        return delivery.promise;
      });
      const passA = a.driver.runPass('m1');
      await expect.poll(() => rm.urls()).toEqual(['http://rm/query']);
      // A's lease lapses while its check-back hangs; the AP submits; B drives the submitted message.
      lease.expire('m1');
      await b.execute('m1', (now) => ({ type: 'SubmitGlobalTransaction', data: msg, metadata: { now } }));
      const passB = b.runPass('m1');
      await expect.poll(() => deliveries).toBe(1);
      // A's check-back now answers SUCCESS, while B's delivery is still in flight.
      checkBack.open({ kind: 'success' });
      const resultA = await passA;
      delivery.open({ kind: 'success' });
      const resultB = await passB;
      expect(resultA.handedOff).toBe(true);
      expect(resultB.state.status).toBe('succeed');
      expect(deliveries).toBe(1);
      expect(log.types('m1').filter((t) => t === 'BranchSucceeded')).toHaveLength(1);
    });
  });

  describe('a log that projects its own appends (ProjectingLog)', () => {
    const run = async (replies: Record<string, () => BranchOutcome>) => {
      const log = new ProjectingMemoryLog();
      const lease = new MemoryLease();
      log.onEndLease = (gid) => lease.expire(gid);
      const { driver, rm } = driverWith({ log, lease, retentionMs: 60_000 });
      for (const [url, reply] of Object.entries(replies)) rm.replies.set(url, reply);
      await submit(driver, sagaOf('g1', 2));
      const pass = await driver.runPass('g1');
      return { log, lease, pass };
    };

    it('when a pass goes on to its next call, then that result records nothing yet, and the last append records the end', async () => {
      const { log, lease, pass } = await run({});
      expect(pass.state.status).toBe('succeed');
      const [atSubmit, afterFirst, atEnd, ...rest] = log.projections;
      expect(rest).toEqual([]);
      expect(atSubmit).toMatchObject({ summary: { status: 'submitted' }, endLease: false });
      expect(atSubmit?.wakeAt).toBeGreaterThan(T0);
      expect(afterFirst).toBeNull();
      // Retention counts from the end, as the projector counts it.
      expect(atEnd).toMatchObject({
        summary: { status: 'succeed' },
        wakeAt: null,
        expireAt: T0 + 60_000,
        endLease: true,
      });
      // The lease went with the last append: nothing left to release.
      expect(lease.releases).toBe(0);
      expect(await lease.acquire('g1')).toHaveProperty('token');
    });

    describe('a submit driven at once takes the pass lease with the append that starts the stream', () => {
      const setUp = (inlinePasses: number) => {
        const log = new ProjectingMemoryLog();
        const lease = new MemoryLease();
        log.onEndLease = (gid) => lease.expire(gid);
        log.onTakeLease = (gid, token) => lease.take(gid, token);
        const { driver, rm, scheduler } = driverWith({ log, lease, inlinePasses });
        const submitTaking = (saga: ReturnType<typeof sagaOf>) =>
          driver.execute(
            saga.definition.gid,
            (now) => ({ type: 'SubmitGlobalTransaction', data: saga, metadata: { now } }),
            { assumeNew: true, takeLease: true },
          );
        return { log, lease, driver, rm, scheduler, submitTaking };
      };

      it('when there is room to drive it inline, then the lease comes with the submit and the pass never asks for it', async () => {
        const { log, lease, driver, rm, submitTaking } = setUp(4);
        const done = await submitTaking(sagaOf('g1', 2));
        expect(done.lease?.token).toEqual(expect.any(String));
        expect(log.projections[0]?.takeLease).toEqual({ token: done.lease!.token, ttlMs: 10_000 });
        // Held by the submitter: nobody else can take it now.
        expect(await lease.renew('g1', done.lease!.token)).toBe(true);

        await driver.startPass('g1', done.version, done, done.lease);
        await driver.drain();
        expect(rm.urls()).toEqual(['http://rm/a0', 'http://rm/a1']);
        expect(log.types('g1').at(-1)).toBe('TransactionSucceeded');
        expect(lease.acquires).toBe(0);
        // Dropped with the append that ended it.
        expect(log.projections.at(-1)).toMatchObject({ endLease: true });
      });

      it('when there is no room for an inline pass, then no lease is taken and the pass is queued', async () => {
        const { log, lease, driver, scheduler, submitTaking } = setUp(0);
        const done = await submitTaking(sagaOf('g1', 2));
        expect(done.lease).toBeUndefined();
        expect(log.projections[0]?.takeLease).toBeUndefined();
        await driver.startPass('g1', done.version, done, done.lease);
        expect(scheduler.passes.map((p) => p.gid)).toEqual(['g1']);
        expect(lease.acquires).toBe(0);
      });

      it('when the gid exists already, then the repeated submit takes no lease', async () => {
        const { log, lease, submitTaking } = setUp(4);
        const first = await submitTaking(sagaOf('g1', 2));
        lease.expire('g1');
        const again = await submitTaking(sagaOf('g1', 2));
        expect(again.appended).toBe(0);
        expect(again.lease).toBeUndefined();
        expect(log.projections.filter((p) => p?.takeLease)).toHaveLength(1);
        expect(first.lease).toBeDefined();
        expect(await lease.acquire('g1')).toHaveProperty('token');
      });
    });

    it('when a pass ends waiting (ONGOING), then its last append records the wake time and the lease is released', async () => {
      const { log, lease, pass } = await run({ 'http://rm/a0': () => ({ kind: 'ongoing', detail: 'ONGOING' }) });
      expect(pass.state.status).toBe('submitted');
      const last = log.projections.at(-1);
      expect(last).toMatchObject({ summary: { status: 'submitted' }, endLease: false });
      expect(last?.wakeAt).toBe(T0 + 10_000);
      expect(lease.releases).toBe(1);
    });
  });
});
