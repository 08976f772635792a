import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { hostDir, hostTreeFlags } from './fixtures.js';

const created: string[] = [];

afterEach(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A writable copy of a fixture host under `base` (a tmpfs such as /dev/shm, or the disk), removed after the test; symlinks are copied as links. */
export function copyHost(host: string, base = os.tmpdir()): { root: string; flags: string[] } {
  const copy = copyHostKept(host, base);
  created.push(copy.root);
  return copy;
}

/** A writable copy of a fixture host that outlives one test (a suite's `beforeAll`); the caller removes `root`. */
export function copyHostKept(host: string, base = os.tmpdir()): { root: string; flags: string[] } {
  const root = mkdtempSync(path.join(base, `vfio-${host}-`));
  cpSync(hostDir(host), root, { recursive: true, verbatimSymlinks: true });
  return { root, flags: hostTreeFlags(root) };
}
