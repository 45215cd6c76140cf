/** Where a program is: the first directory of the search path holding an executable file of that name. */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export function findExecutable(name: string, searchPath: string = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
