import { describe, expect, it } from 'vitest';
import { encodeGrpcMessage, isGrpcContentType, parseGrpcStatus, parseGrpcTimeout, splitRpcPath } from './grpc.js';

describe('gRPC request facts', () => {
  it('recognises gRPC content types', () => {
    expect(isGrpcContentType('application/grpc')).toBe(true);
    expect(isGrpcContentType('application/grpc+proto')).toBe(true);
    expect(isGrpcContentType('application/grpc-web+json')).toBe(true);
    expect(isGrpcContentType('application/json')).toBe(false);
    expect(isGrpcContentType(undefined)).toBe(false);
  });

  it('names the RPC from /package.Service/Method and refuses other paths', () => {
    expect(splitRpcPath('/demo.Echo/Unary')).toEqual({ service: 'demo.Echo', method: 'Unary' });
    expect(splitRpcPath('/grpc.health.v1.Health/Check')).toEqual({ service: 'grpc.health.v1.Health', method: 'Check' });
    expect(splitRpcPath('/Svc/M?x=1')).toEqual({ service: 'Svc', method: 'M' });
    for (const bad of ['', '/', '//M', '/Svc', '/Svc/', '/a/b/c', 'Svc/M']) expect(splitRpcPath(bad)).toBeUndefined();
  });

  it('reads grpc-timeout in every unit, rounding up to whole milliseconds', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('3S')).toBe(3_000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(2);
    expect(parseGrpcTimeout('1n')).toBe(1);
    expect(parseGrpcTimeout('0m')).toBe(0);
    expect(parseGrpcTimeout('99999999S')).toBe(99_999_999_000);
  });

  it('ignores a malformed grpc-timeout', () => {
    for (const bad of [undefined, '', 'm', '100', '100x', '-1S', '1.5S', '123456789S', ' 1S']) expect(parseGrpcTimeout(bad)).toBeUndefined();
  });

  it('percent-encodes grpc-message as the gRPC spec says', () => {
    expect(encodeGrpcMessage('plain text: ok')).toBe('plain text: ok');
    expect(encodeGrpcMessage('100% sure')).toBe('100%25 sure');
    expect(encodeGrpcMessage('line\nbreak')).toBe('line%0Abreak');
    expect(encodeGrpcMessage('café «x»')).toBe('caf%C3%A9 %C2%ABx%C2%BB');
    expect(decodeURIComponent(encodeGrpcMessage('ü%\t'))).toBe('ü%\t');
  });

  it('reads grpc-status, -1 when absent or not a status', () => {
    expect(parseGrpcStatus('0')).toBe(0);
    expect(parseGrpcStatus('14')).toBe(14);
    expect(parseGrpcStatus(undefined)).toBe(-1);
    expect(parseGrpcStatus('')).toBe(-1);
    expect(parseGrpcStatus('x')).toBe(-1);
    expect(parseGrpcStatus(['5'])).toBe(-1);
  });
});
