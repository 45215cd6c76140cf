import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../lib/errors.js';
import type { ErrorCode } from '../../lib/errors.js';
import {
  DEFAULT_COLLECTOR_URL,
  DEFAULT_EXPORT_DELAY_MS,
  formatListenAddress,
  parseDemoConfig,
  parseListenHost,
  parsePeerAddress,
  parseProxyUrl,
} from './config.js';
import type { DemoAppName } from './config.js';

function failure(app: DemoAppName, argv: string[], env: NodeJS.ProcessEnv = {}): { code: ErrorCode | undefined; message: string } {
  try {
    parseDemoConfig(app, argv, env);
  } catch (err) {
    return { code: isTracemeshError(err) ? err.code : undefined, message: String((err as Error).message) };
  }
  throw new Error(`expected ${argv.join(' ')} to be rejected`);
}

describe('parseDemoConfig', () => {
  it('has defaults for every setting', () => {
    const config = parseDemoConfig('web', [], {});
    expect(config).toEqual({
      app: 'web',
      serviceName: 'web',
      host: '127.0.0.1',
      port: 9080,
      collectorUrl: DEFAULT_COLLECTOR_URL,
      exportDelayMs: DEFAULT_EXPORT_DELAY_MS,
      ratings: { host: '127.0.0.1', port: 50051 },
      inventory: { host: '127.0.0.1', port: 7070 },
      catalog: undefined,
      reviews: { host: '127.0.0.1', port: 9082 },
      version: 'v1',
      faultFile: undefined,
      proxy: undefined,
      help: false,
    });
    expect(parseDemoConfig('ratings', [], {}).port).toBe(50051);
    expect(parseDemoConfig('inventory', [], {}).port).toBe(7070);
  });

  it('reads flags, and env vars where a flag is absent', () => {
    const config = parseDemoConfig(
      'web',
      ['--port', '0', '--ratings', 'ratings:50051', '--proxy', 'http://127.0.0.1:15001', '--export-delay-ms', '50'],
      {
        DEMO_PORT: '1234',
        DEMO_INVENTORY: 'inventory.default.svc:7070',
        DEMO_COLLECTOR: 'http://127.0.0.1:4317',
        OTEL_SERVICE_NAME: 'web-canary',
        DEMO_RATINGS: 'ignored:1',
      },
    );
    expect(config.port).toBe(0);
    expect(config.ratings).toEqual({ host: 'ratings', port: 50051 });
    expect(config.inventory).toEqual({ host: 'inventory.default.svc', port: 7070 });
    expect(config.proxy).toEqual({ host: '127.0.0.1', port: 15001, url: 'http://127.0.0.1:15001' });
    expect(config.collectorUrl).toBe('http://127.0.0.1:4317');
    expect(config.serviceName).toBe('web-canary');
    expect(config.exportDelayMs).toBe(50);
  });

  it('reads the listen address from --host, then DEMO_HOST', () => {
    expect(parseDemoConfig('ratings', ['--host', '::'], { DEMO_HOST: '0.0.0.0' }).host).toBe('::');
    expect(parseDemoConfig('inventory', [], { DEMO_HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(parseDemoConfig('web', ['--host', '[fd00::2]'], {}).host).toBe('fd00::2');
    expect(parseDemoConfig('reviews', [], { DEMO_HOST: '' }).host).toBe('127.0.0.1');
  });

  it('prefers DEMO_* env vars over the OTel ones', () => {
    const config = parseDemoConfig('ratings', [], {
      DEMO_SERVICE_NAME: 'ratings-v2',
      OTEL_SERVICE_NAME: 'other',
      DEMO_COLLECTOR: 'http://127.0.0.1:1111',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:2222',
      OTEL_BSP_SCHEDULE_DELAY: '2000',
    });
    expect(config.serviceName).toBe('ratings-v2');
    expect(config.collectorUrl).toBe('http://127.0.0.1:1111');
    expect(config.exportDelayMs).toBe(2000);
  });

  it('does not take the proxy from http_proxy', () => {
    expect(parseDemoConfig('web', [], { http_proxy: 'http://corp:3128', HTTP_PROXY: 'http://corp:3128' }).proxy).toBeUndefined();
  });

  it('names the flag or env var of a bad value', () => {
    expect(failure('web', ['--port', '70000'])).toEqual({ code: 'TM_ERR_CLI_BAD_VALUE', message: "--port: '70000' is not a port (0-65535)" });
    expect(failure('web', [], { DEMO_PORT: 'eighty' })).toEqual({
      code: 'TM_ERR_CLI_BAD_VALUE',
      message: "DEMO_PORT: 'eighty' is not a port (0-65535)",
    });
    expect(failure('web', ['--ratings', 'ratings']).message).toBe("--ratings: 'ratings' is not HOST:PORT (e.g. ratings:50051)");
    expect(failure('web', [], { DEMO_INVENTORY: 'inventory:0' }).message).toContain('DEMO_INVENTORY');
    expect(failure('web', ['--proxy', 'socks5://127.0.0.1:1080']).message).toContain('--proxy');
    expect(failure('web', ['--proxy', 'http://127.0.0.1:15001/some/path']).message).toContain('http://HOST:PORT');
    expect(failure('web', ['--collector', 'nope']).message).toContain('--collector');
    expect(failure('web', ['--export-delay-ms', '0']).message).toContain('--export-delay-ms');
    expect(failure('web', ['--service-name', 'a b']).message).toContain('--service-name');
    expect(failure('web', ['--host', 'localhost'])).toEqual({
      code: 'TM_ERR_CLI_BAD_VALUE',
      message: "--host: 'localhost' is not an IP address to listen on (e.g. 127.0.0.1, :: or 0.0.0.0)",
    });
    expect(failure('catalog', [], { DEMO_HOST: '10.0.0.256' }).message).toContain('DEMO_HOST');
  });

  it('rejects unknown flags and positionals with CLI codes', () => {
    expect(failure('inventory', ['--prot', '1']).code).toBe('TM_ERR_CLI_UNKNOWN_FLAG');
    expect(failure('inventory', ['extra']).code).toBe('TM_ERR_CLI_USAGE');
    expect(failure('inventory', ['--port']).code).toBe('TM_ERR_CLI_USAGE');
  });

  it('reports --help', () => {
    expect(parseDemoConfig('web', ['--help'], {}).help).toBe(true);
  });
});

describe('parsePeerAddress and parseProxyUrl', () => {
  it('accept names and IPv4 addresses', () => {
    expect(parsePeerAddress('127.0.0.1:7070', 'x')).toEqual({ host: '127.0.0.1', port: 7070 });
    expect(parsePeerAddress('ratings.default.svc.cluster.local:50051', 'x')).toEqual({
      host: 'ratings.default.svc.cluster.local',
      port: 50051,
    });
    expect(parseProxyUrl('http://localhost', 'x')).toEqual({ host: 'localhost', port: 80, url: 'http://localhost' });
  });

  it('reject what would break a CONNECT line', () => {
    for (const text of [':7070', 'ratings:', 'rat ings:1', 'ratings:1\r\nX: y', 'ratings:99999', '-bad:1']) {
      expect(() => parsePeerAddress(text, 'x'), text).toThrow(/x: /);
    }
  });
});

describe('parseListenHost and formatListenAddress', () => {
  it('take IPv4 and IPv6 addresses, IPv6 with or without brackets', () => {
    expect(parseListenHost('10.1.2.3', 'x')).toBe('10.1.2.3');
    expect(parseListenHost('::', 'x')).toBe('::');
    expect(parseListenHost('[::1]', 'x')).toBe('::1');
    expect(formatListenAddress({ host: '0.0.0.0', port: 9080 })).toBe('0.0.0.0:9080');
    expect(formatListenAddress({ host: '::', port: 50051 })).toBe('[::]:50051');
  });

  it('reject names, ports, zone indexes and junk, naming the source', () => {
    for (const text of ['', 'web', '127.0.0.1:80', '[::1]:80', '::1]', '[::1', 'fe80::1%eth0', '1.2.3', ' ::', '::\n', 'a'.repeat(5000)]) {
      expect(() => parseListenHost(text, 'DEMO_HOST'), JSON.stringify(text)).toThrow(/^DEMO_HOST: '.{0,80}' is not an IP address to listen on/s);
    }
  });
});
