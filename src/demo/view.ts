/**
 * The live terminal view and the end-of-run summary as plain text: pure
 * functions of the figures, so they are tested without a terminal. ANSI is
 * limited to bold/red/dim (when `color`) and, in the runner, clearing the
 * screen before each frame.
 */
import type { LoadCounts } from './load-generator.js';
import type { EdgeRow, LiveSnapshot, ServiceRow, TraceRef } from './live-stats.js';
import { SLOW_TRACE_MS } from './live-stats.js';
import type { ClockReading } from './scenario.js';
import { PHASES } from './scenario.js';

export interface ViewState {
  readonly elapsedMs: number;
  /** Total run length with --duration; undefined runs until Ctrl-C. */
  readonly durationMs: number | undefined;
  /** Frame counter: drives the heartbeat. */
  readonly frame: number;
  readonly clock: ClockReading;
  readonly rate: number;
  readonly load: LoadCounts;
  readonly stats: LiveSnapshot;
  /** `tracemesh trace` plus `--api URL` when the query API is not on its default address. */
  readonly traceCommand: string;
  readonly color: boolean;
}

const HEARTBEAT = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function paint(color: boolean, code: string, text: string): string {
  return color ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** `mm:ss`. */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(total / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
}

/** Milliseconds as people read them: `0.8 ms`, `12 ms`, `1.25 s`; `-` for none. */
export function formatMs(ms: number): string {
  if (!(ms > 0)) return '-';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatPercent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
}

const SERVICE_WIDTHS = [12, 7, 9, 8, 9, 9];
const EDGE_WIDTHS = [22, 7, 7, 8, 9, 9];

export function serviceLines(services: readonly ServiceRow[], color: boolean): string[] {
  const lines = [paint(color, '1', row(['SERVICE', 'REQ/S', 'REQUESTS', 'ERR%', 'P50', 'P99'], SERVICE_WIDTHS))];
  for (const s of services) {
    const err = formatPercent(s.errorRate);
    const line = row([s.name, s.ratePerSecond.toFixed(1), String(s.requests), err, formatMs(s.p50Ms), formatMs(s.p99Ms)], SERVICE_WIDTHS);
    lines.push(s.errorRate >= 0.05 ? paint(color, '31', line) : line);
  }
  return lines;
}

export function edgeLines(edges: readonly EdgeRow[], color: boolean): string[] {
  const lines = [paint(color, '1', row(['EDGE (last 1-2 min)', 'REQS', 'ERRORS', 'ERR%', 'P50', 'P99'], EDGE_WIDTHS))];
  const sorted = [...edges].sort((a, b) => a.client.localeCompare(b.client) || a.server.localeCompare(b.server));
  for (const e of sorted) {
    const share = e.requests === 0 ? 0 : e.errors / e.requests;
    const line = row([`${e.client} → ${e.server}`, String(e.requests), String(e.errors), formatPercent(share), formatMs(e.p50Ms), formatMs(e.p99Ms)], EDGE_WIDTHS);
    lines.push(share >= 0.05 ? paint(color, '31', line) : line);
  }
  return lines;
}

function traceLine(t: TraceRef): string {
  const errors = t.errorCount === 0 ? '' : `  ${t.errorCount} error${t.errorCount === 1 ? '' : 's'}`;
  return `  ${t.traceId}  ${t.rootService} ${t.rootName}  ${formatMs(t.durationMs)}${errors}`;
}

function failureText(load: LoadCounts): string {
  const parts = Object.entries(load.failures)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, count]) => `${status}×${count}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

/** One frame of the live view, as lines. */
export function renderView(state: ViewState): string[] {
  const { clock, stats, load, color } = state;
  const beat = HEARTBEAT[state.frame % HEARTBEAT.length] ?? '*';
  const clockText = state.durationMs === undefined ? formatClock(state.elapsedMs) : `${formatClock(state.elapsedMs)} / ${formatClock(state.durationMs)}`;
  const phase = `phase ${clock.index + 1}/${PHASES.length}: ${clock.phase.name} (${Math.ceil(clock.remainingMs / 1000)} s left) - ${clock.phase.description}`;
  const lines = [
    `${paint(color, '1', 'tracemesh demo')}  ${beat} ${clockText}  ${paint(color, clock.phase.name === 'steady' || clock.phase.name === 'healed' ? '32' : '33', phase)}`,
    `load ${state.rate} req/s: sent ${load.sent}, ok ${load.ok}, failed ${load.failed}${failureText(load)}, skipped ${load.skipped}   spans stored: ${stats.spansStored}`,
    '',
    ...serviceLines(stats.services, color),
    '',
    ...edgeLines(stats.edges, color),
    '',
    `latest failed traces (open one with: ${state.traceCommand} <id>)`,
    ...(stats.failedTraces.length === 0 ? ['  none'] : stats.failedTraces.map(traceLine)),
    `latest slow traces (over ${SLOW_TRACE_MS} ms)`,
    ...(stats.slowTraces.length === 0 ? ['  none'] : stats.slowTraces.map(traceLine)),
  ];
  if (stats.problem !== undefined) lines.push('', paint(color, '31', `query API: ${stats.problem} (showing the last figures)`));
  lines.push('', paint(color, '2', 'Ctrl-C stops the demo and every process it started.'));
  return lines;
}

/** The one line --no-ui prints every few seconds instead of the view. */
export function progressLine(state: ViewState): string {
  const failing = state.stats.services.filter((s) => s.errorRate >= 0.05).map((s) => `${s.name} ${formatPercent(s.errorRate)}`);
  return (
    `${formatClock(state.elapsedMs)} ${state.clock.phase.name}: sent ${state.load.sent}, failed ${state.load.failed}, ` +
    `spans stored ${state.stats.spansStored}${failing.length === 0 ? '' : `, errors: ${failing.join(', ')}`}`
  );
}

export interface DemoSummary {
  readonly elapsedMs: number;
  readonly load: LoadCounts;
  readonly stats: LiveSnapshot;
}

/** The summary after --duration (or Ctrl-C): requests sent, spans stored, errors by service. */
export function renderSummary(summary: DemoSummary): string[] {
  const { load, stats } = summary;
  const lines = [
    `tracemesh demo summary (${formatClock(summary.elapsedMs)} of traffic)`,
    `  requests sent: ${load.sent} (ok ${load.ok}, failed ${load.failed}${failureText(load)}, skipped ${load.skipped})`,
    `  spans stored: ${stats.spansStored}`,
    '  errors by service:',
  ];
  for (const s of stats.services) lines.push(`    ${s.name.padEnd(12)} ${String(s.errors).padStart(6)} of ${s.requests}`);
  return lines;
}
