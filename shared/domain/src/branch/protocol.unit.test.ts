import { describe, expect, it } from 'vitest';
import { isHttpUrl, parseGrpcUrl, payloadBase64, storedPayload } from './protocol';

describe('parseGrpcUrl (DTM: host:port/package.Service/Method)', () => {
  it('when the url is host:port/package.Service/Method, then it splits into the channel target and the method path', () => {
    expect(parseGrpcUrl('localhost:58081/busi.Busi/TransIn')).toEqual({
      target: 'localhost:58081',
      host: 'localhost',
      port: 58081,
      method: '/busi.Busi/TransIn',
    });
    expect(parseGrpcUrl('10.0.0.7:9000/Svc/Do')?.method).toBe('/Svc/Do');
  });

  it('when the url names the dns resolver or an IPv6 address, then the target keeps it', () => {
    expect(parseGrpcUrl('dns:///rm.internal:443/a.b.C/M')).toMatchObject({
      target: 'dns:///rm.internal:443',
      port: 443,
    });
    expect(parseGrpcUrl('[::1]:50051/busi.Busi/TransOut')).toMatchObject({ target: '[::1]:50051', host: '[::1]' });
  });

  it('when the url lacks the port, the method, or is http, then it is not a gRPC url', () => {
    for (const bad of [
      'localhost/busi.Busi/TransIn',
      'localhost:58081',
      'localhost:58081/busi.Busi',
      'localhost:58081/busi.Busi/TransIn/extra',
      'localhost:0/busi.Busi/TransIn',
      'localhost:70000/busi.Busi/TransIn',
      'http://localhost:58081/busi.Busi/TransIn',
      'localhost:58081/busi.Busi/Trans In',
      '',
    ]) {
      expect(parseGrpcUrl(bad), bad).toBeNull();
    }
  });

  it('tells http(s) urls apart', () => {
    expect(isHttpUrl('http://a/b')).toBe(true);
    expect(isHttpUrl('HTTPS://a/b')).toBe(true);
    expect(isHttpUrl('localhost:1/a.B/C')).toBe(false);
    expect(isHttpUrl('kafka://t')).toBe(false);
  });
});

describe('storedPayload: how a transaction of each protocol stores a payload', () => {
  const bytes = Buffer.from([0x08, 0x1e, 0xff, 0x00]);

  it('when the transaction is gRPC, then bytes stay base64 and text is stored as the base64 of its UTF-8', () => {
    expect(storedPayload(bytes.toString('base64'), true, 'grpc')).toBe('CB7/AA==');
    expect(storedPayload('Zoë', false, 'grpc')).toBe(Buffer.from('Zoë', 'utf8').toString('base64'));
    expect(storedPayload('', false, 'grpc')).toBe('');
  });

  it('when the transaction is http or json-rpc, then text stays and base64 is decoded to its UTF-8 text', () => {
    expect(storedPayload('{"a":1}', false, 'http')).toBe('{"a":1}');
    const b64 = Buffer.from('{"who":"Zoë"}', 'utf8').toString('base64');
    expect(storedPayload(b64, true, 'json-rpc')).toBe('{"who":"Zoë"}');
    // URL-safe base64 without padding, as Go's protobuf JSON may write it.
    expect(storedPayload(Buffer.from('??>', 'utf8').toString('base64url'), true, 'http')).toBe('??>');
    // What Buffer makes of base64 with a dangling character, never an exception.
    for (const odd of ['QUJDR', 'Q', 'QUI']) {
      expect(storedPayload(odd, true, 'http')).toBe(Buffer.from(odd, 'base64').toString('utf8'));
    }
  });

  it('prints bin_data as the base64 of the bytes, whatever the protocol', () => {
    expect(payloadBase64('CB7/AA==', 'grpc')).toBe('CB7/AA==');
    expect(payloadBase64('{"a":1}', 'http')).toBe(Buffer.from('{"a":1}').toString('base64'));
  });
});
