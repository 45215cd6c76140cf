import type { Command } from '../command.js';
import { collectorCommand } from './collector.js';
import { graphCommand } from './graph.js';
import { iptablesCommand } from './iptables.js';
import { proxyCommand } from './proxy.js';
import { servicesCommand } from './services.js';
import { traceCommand } from './trace.js';
import { tracesCommand } from './traces.js';

/** Every `tracemesh` subcommand, in the order help lists them. */
export const commands: readonly Command[] = [collectorCommand, proxyCommand, iptablesCommand, tracesCommand, traceCommand, servicesCommand, graphCommand];
