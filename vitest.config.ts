import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no root (chDB in a temp dir, loopback sockets);
// `system` needs root (network namespaces, iptables, etcd, Prometheus).
// Forks, not threads: chDB binds one data directory per process, so every
// test file that opens a store must have a process of its own.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // bench/tmp holds benchmark scratch copies, never tests of ours.
          exclude: ['bench/tmp/**', 'node_modules/**', 'dist/**'],
          include: ['src/**/*.test.ts', 'collector/**/*.test.ts', 'proxy/**/*.test.ts', 'bench/**/*.test.ts', 'test/unit/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
