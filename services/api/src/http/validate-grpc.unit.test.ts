import { describe, expect, it } from 'vitest';
import { BadRequest } from './bad-request';
import { parseGlobalRequest, parseRegisterBranch } from './validate-global';

const limits = { maxBranches: 10 };
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('protocol grpc at the edge (the agreed storage: payloads as base64 of their bytes)', () => {
  it('when a grpc saga gives bin_payloads, then they are stored as given; gRPC and http(s) URLs are both accepted', () => {
    const { definition, branches } = parseGlobalRequest(
      {
        gid: 'g',
        trans_type: 'saga',
        protocol: 'grpc',
        steps: [
          { action: 'rm:50051/busi.Busi/TransOut', compensate: 'dns:///rm:50051/busi.Busi/TransOutRevert' },
          { action: 'http://rm/TransIn', compensate: '[::1]:9000/a.B/C' },
        ],
        bin_payloads: ['AAH+/w==', ''],
      },
      limits,
    );
    expect(definition.protocol).toBe('grpc');
    expect(definition.payloads).toEqual(['AAH+/w==', '']);
    expect(branches.map((b) => b.data)).toEqual(['AAH+/w==', 'AAH+/w==', '', '']);
  });

  it('when a grpc transaction gives text payloads, then their UTF-8 is stored as base64', () => {
    const { definition } = parseGlobalRequest(
      { gid: 'g', trans_type: 'msg', protocol: 'grpc', steps: [{ action: 'rm:1/a.B/C' }], payloads: ['héllo'] },
      limits,
    );
    expect(definition.payloads).toEqual([b64('héllo')]);
  });

  it('when a grpc workflow names its input, then it stays base64 (the bytes go to the callback)', () => {
    const { definition } = parseGlobalRequest(
      {
        gid: 'w',
        trans_type: 'workflow',
        protocol: 'grpc',
        custom_data: JSON.stringify({ name: 'wf', data: 'AAH+/w==' }),
        query_prepared: 'rm:1/wf.Wf/Resume',
      },
      limits,
    );
    expect(definition.workflow).toEqual({ name: 'wf', input: 'AAH+/w==' });
  });

  it('when the input is malformed, then it is refused naming the field', () => {
    const bad = (body: Record<string, unknown>) => () =>
      parseGlobalRequest({ gid: 'g', trans_type: 'saga', ...body }, limits);
    expect(bad({ protocol: 'grpc', steps: [{ action: 'rm/a.B/C' }] })).toThrow(
      /steps\[0\]\.action must be host:port\/package\.Service\/Method or an http\(s\) URL/,
    );
    expect(bad({ steps: [{ action: 'rm:1/a.B/C' }] })).toThrow(/steps\[0\]\.action/);
    expect(bad({ protocol: 'grpc', steps: [{ action: '' }], bin_payloads: ['not base64!'] })).toThrow(
      /bin_payloads\[0\] must be base64 text/,
    );
    expect(bad({ protocol: 'grpc', steps: [], bin_payloads: [], payloads: [] })).toThrow(/not both/);
    expect(bad({ protocol: 'json-rpc' })).toThrow(BadRequest);
  });

  it('when a branch is registered with protocol grpc, then bin_data is stored as given and data as base64', () => {
    const tcc = parseRegisterBranch({
      gid: 'g',
      trans_type: 'tcc',
      branch_id: '01',
      protocol: 'grpc',
      bin_data: 'AAH+/w==',
      confirm: 'rm:1/a.B/Confirm',
      cancel: 'rm:1/a.B/Cancel',
    });
    expect(tcc.branches.map((b) => [b.op, b.url, b.data])).toEqual([
      ['cancel', 'rm:1/a.B/Cancel', 'AAH+/w=='],
      ['confirm', 'rm:1/a.B/Confirm', 'AAH+/w=='],
    ]);
    const wf = parseRegisterBranch({
      gid: 'g',
      trans_type: 'workflow',
      branch_id: '01',
      protocol: 'grpc',
      data: 'x',
      op: 'a',
      status: 'succeed',
    });
    expect(wf.branches[0]!.data).toBe(b64('x'));
    expect(() => parseRegisterBranch({ gid: 'g', trans_type: 'tcc', branch_id: '01', bin_data: 'AA==' })).toThrow(
      /bin_data is for protocol grpc/,
    );
  });
});
