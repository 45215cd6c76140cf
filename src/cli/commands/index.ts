import type { Command } from '../command.js';
import { applyCommand } from './apply.js';
import { collectorCommand } from './collector.js';
import { controlPlaneCommand } from './control-plane.js';
import { deleteCommand } from './delete.js';
import { demoCommand } from './demo.js';
import { getCommand } from './get.js';
import { graphCommand } from './graph.js';
import { iptablesCommand } from './iptables.js';
import { proxiesCommand } from './proxies.js';
import { proxyCommand } from './proxy.js';
import { servicesCommand } from './services.js';
import { traceCommand } from './trace.js';
import { tracesCommand } from './traces.js';

/** Every `tracemesh` subcommand, in the order help lists them. */
export const commands: readonly Command[] = [
  collectorCommand,
  proxyCommand,
  iptablesCommand,
  controlPlaneCommand,
  applyCommand,
  getCommand,
  deleteCommand,
  proxiesCommand,
  tracesCommand,
  traceCommand,
  servicesCommand,
  graphCommand,
  demoCommand,
];
