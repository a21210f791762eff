import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BranchSignatureVerifier, signBranchCall, type SignedCall } from './branch-signature';

const KEY = 'k'.repeat(32);
const T0 = 1_733_120_000_000;
const call: SignedCall = {
  method: 'POST',
  path: '/TransIn?gid=g1&trans_type=saga&branch_id=01&op=action',
  body: '{"amount":30,"who":"Zoë"}',
};

const verifier = (now = T0, over: Partial<ConstructorParameters<typeof BranchSignatureVerifier>[0]> = {}) => {
  const clock = { now };
  return { clock, v: new BranchSignatureVerifier({ key: KEY, now: () => clock.now, ...over }) };
};

describe('branch call signatures', () => {
  it('when signed, then the header is t=<ms>,v1=<HMAC-SHA256 hex of t, method, path and body>, as the README documents', () => {
    const expected = createHmac('sha256', KEY)
      .update(`${T0}\nPOST\n${call.path}\n${call.body as string}`, 'utf8')
      .digest('hex');
    expect(signBranchCall(KEY, call, T0)).toBe(`t=${T0},v1=${expected}`);
  });

  it('when a call is signed with the key, then it is accepted once and its replay refused', () => {
    const { v } = verifier();
    const header = signBranchCall(KEY, call, T0);
    expect(v.verify(header, call)).toEqual({ ok: true });
    expect(v.verify(header, call)).toEqual({ ok: false, reason: 'signature already used (replay)' });
  });

  it.each([
    ['the body', { ...call, body: '{"amount":3000,"who":"Zoë"}' }],
    ['the path', { ...call, path: '/TransOut?gid=g1&trans_type=saga&branch_id=01&op=action' }],
    ['the query', { ...call, path: '/TransIn?gid=g2&trans_type=saga&branch_id=01&op=action' }],
    ['the method', { ...call, method: 'PUT' }],
  ])('when %s was altered, then the call is refused', (_what, altered) => {
    const { v } = verifier();
    expect(v.verify(signBranchCall(KEY, call, T0), altered)).toEqual({
      ok: false,
      reason: 'signature does not match the call',
    });
  });

  it('when the signature is forged with another key, missing or malformed, then the call is refused', () => {
    const { v } = verifier();
    expect(v.verify(signBranchCall('x'.repeat(32), call, T0), call).ok).toBe(false);
    expect(v.verify(undefined, call)).toEqual({ ok: false, reason: 'no dtm-signature header' });
    expect(v.verify(`t=${T0},v1=abc`, call)).toEqual({ ok: false, reason: 'malformed dtm-signature header' });
  });

  it('when the timestamp is outside the window either way, then the call is refused', () => {
    const { v } = verifier(T0, { toleranceMs: 60_000 });
    expect(v.verify(signBranchCall(KEY, call, T0 - 60_001), call).ok).toBe(false);
    expect(v.verify(signBranchCall(KEY, call, T0 + 60_001), call).ok).toBe(false);
    expect(v.verify(signBranchCall(KEY, call, T0 - 59_000), call)).toEqual({ ok: true });
  });

  it('when rotating keys, then a call signed with any of them is accepted', () => {
    const { v } = verifier(T0, { key: ['new-key-0123456789', KEY] });
    expect(v.verify(signBranchCall(KEY, call, T0), call)).toEqual({ ok: true });
    expect(v.verify(signBranchCall('new-key-0123456789', call, T0), call)).toEqual({ ok: true });
  });

  it('when the replay memory is full, then a forgotten signature is still refused, and fresh calls pass', () => {
    const { v, clock } = verifier(T0, { maxRemembered: 2 });
    const first = signBranchCall(KEY, call, T0);
    expect(v.verify(first, call).ok).toBe(true);
    clock.now = T0 + 1;
    expect(v.verify(signBranchCall(KEY, call, T0 + 1), call).ok).toBe(true);
    clock.now = T0 + 2;
    expect(v.verify(signBranchCall(KEY, call, T0 + 2), call).ok).toBe(true); // the first is forgotten now
    expect(v.verify(first, call)).toEqual({ ok: false, reason: 'signature already used (replay)' });
    clock.now = T0 + 3;
    expect(v.verify(signBranchCall(KEY, call, T0 + 3), call).ok).toBe(true);
    expect(v.remembered).toBe(2);
  });

  it('when signatures leave the window, then they are forgotten (the memory stays bounded by time too)', () => {
    const { v, clock } = verifier(T0, { toleranceMs: 1_000 });
    const old = signBranchCall(KEY, call, T0);
    expect(v.verify(old, call).ok).toBe(true);
    clock.now = T0 + 5_000;
    expect(v.verify(signBranchCall(KEY, call, T0 + 5_000), call).ok).toBe(true);
    expect(v.remembered).toBe(1);
    // The old one is out of the window: refused for its age, not remembered any more.
    expect(v.verify(old, call)).toEqual({ ok: false, reason: 'signature timestamp outside the window' });
  });
});
