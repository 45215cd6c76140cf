/** Collector defaults that the CLI reads without loading the collector (and chDB with it). */
export const DEFAULT_DATA_DIR = './.tracemesh/data';
