import { describe, expect, it } from 'vitest';
import { BadRequest } from './bad-request';
import { DtmService } from './dtm-service';

/** A service whose driver and log must never be reached: parsing and the outbound policy refuse first. */
const service = (refusal: (url: string) => string | null) => {
  const touched: string[] = [];
  const untouchable = new Proxy(
    {},
    {
      get: (_t, name) => () => {
        touched.push(String(name));
        throw new Error(`must not be reached: ${String(name)}`);
      },
    },
  );
  const svc = new DtmService({
    driver: untouchable as never,
    log: untouchable as never,
    topics: untouchable as never,
    readModel: untouchable as never,
    limits: { maxBranches: 10 },
    requestTimeoutS: 3,
    timeoutToFailS: 35,
    policy: { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 60 },
    version: 'test',
    now: () => 0,
    outbound: { refusal },
  });
  return { svc, touched };
};

describe('the outbound policy sees every URL of a request before anything is written', () => {
  it('when the policy refuses a step URL, then the submit is a 422 naming it and nothing is reached', async () => {
    const seen: string[] = [];
    const { svc, touched } = service((url) => {
      seen.push(url);
      return url.includes('169.254') ? `${url}: link-local address` : null;
    });
    const body = {
      gid: 'g1',
      trans_type: 'saga',
      steps: [
        { action: 'http://rm/a', compensate: 'http://rm/c' },
        { action: 'http://169.254.169.254/latest/meta-data/', compensate: '' },
      ],
    };
    const err = await svc.submit(body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequest);
    expect((err as BadRequest).status).toBe(422);
    expect((err as BadRequest).message).toBe(
      'outbound URL refused: http://169.254.169.254/latest/meta-data/: link-local address',
    );
    expect(seen).toEqual(['http://rm/c', 'http://rm/a', 'http://169.254.169.254/latest/meta-data/']);
    expect(touched).toEqual([]);
  });

  it('when the policy refuses a subscriber or a registered branch, then those are refused too', async () => {
    const { svc, touched } = service((url) => `${url}: denied`);
    await expect(svc.subscribe('t', 'http://10.0.0.1/x', '')).rejects.toThrow(
      /outbound URL refused: http:\/\/10.0.0.1\/x: denied/,
    );
    await expect(
      svc.registerBranch({ gid: 'g', trans_type: 'xa', branch_id: '01', url: 'http://rm/xa' }),
    ).rejects.toThrow(/outbound URL refused: http:\/\/rm\/xa: denied/);
    expect(touched).toEqual([]);
  });
});

describe('wait_result', () => {
  it('when the wall clock jumps while another driver holds the transaction, then the submit still waits for it', async () => {
    let wall = 0;
    const passes: string[] = [];
    const driver = {
      execute: async () => ({
        state: { status: 'submitted', definition: { options: { waitResult: true } } },
        version: 1,
        appended: 2,
      }),
      runPass: async () => {
        passes.push('pass');
        // The first pass finds the transaction held by another driver; the next one finishes it.
        if (passes.length === 1) return { skipped: true, state: { status: 'submitted' } };
        return { state: { status: 'succeed' } };
      },
    };
    const svc = new DtmService({
      driver: driver as never,
      log: {} as never,
      topics: {} as never,
      readModel: {} as never,
      limits: { maxBranches: 10 },
      requestTimeoutS: 3,
      timeoutToFailS: 35,
      policy: { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 60 },
      version: 'test',
      // Every reading of the wall clock is an hour later than the last (an NTP step, a VM resumed).
      now: () => (wall += 3_600_000),
      outbound: { refusal: () => null },
    });
    const body = { gid: 'g1', trans_type: 'saga', wait_result: true, steps: [{ action: 'http://rm/a' }] };
    await expect(svc.submit(body)).resolves.toMatchObject({ dtm_result: 'SUCCESS' });
    expect(passes).toEqual(['pass', 'pass']);
  });
});
