import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Value imports (`import type` left out, `import()` not followed): what loading `file` loads. */
function staticImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+'([^']+)';/gms)) out.push(m[1] as string);
  for (const m of text.matchAll(/^import\s+'([^']+)';/gm)) out.push(m[1] as string);
  return out;
}

/** Every package a module loads through its static imports, transitively through relative ones. */
function packagesLoadedBy(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec);
    }
  }
  return packages;
}

describe('what the proxy loads for telemetry', () => {
  it('loads neither the OpenTelemetry SDK nor grpc-js unless the otel span sink exports (the lean path stays small)', () => {
    const loaded = [...packagesLoadedBy(path.join(HERE, 'create-telemetry.ts'))];
    expect(loaded.filter((p) => p.startsWith('@opentelemetry/') || p.startsWith('@grpc/'))).toEqual([]);
    expect(loaded).toContain('prom-client');
    expect(loaded).toContain('node:http2');
  });

  it('the SDK span exporter is what loads them, so the walk above can see an SDK import', () => {
    const loaded = [...packagesLoadedBy(path.join(HERE, 'span-sink-otel-exporter.ts'))];
    expect(loaded).toContain('@opentelemetry/exporter-trace-otlp-grpc');
  });
});
