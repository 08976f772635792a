import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { create } from 'tar';
import type { CaptureEntry, SecretFormat } from '../host/capture-files.js';
import { replaceFileSafely } from '../host/private-file.js';
import { redactCmdline, redactLibvirtXml, redactPveConfig, redactPveMapping, type Redacted } from './redact.js';

const redactors: Record<SecretFormat, (text: string) => Redacted> = {
  cmdline: redactCmdline,
  'pve-config': redactPveConfig,
  'pve-mapping': redactPveMapping,
  'libvirt-xml': redactLibvirtXml,
};

/** Entries with their secrets replaced, and how many values were replaced. */
export function stripSecrets(entries: readonly CaptureEntry[]): { entries: CaptureEntry[]; redactedValues: number } {
  let redactedValues = 0;
  const cleaned = entries.map((entry) => {
    if (entry.kind !== 'file' || !entry.secrets) return entry;
    const { text, count } = redactors[entry.secrets](entry.content);
    redactedValues += count;
    return { kind: 'file' as const, path: entry.path, content: text };
  });
  return { entries: cleaned, redactedValues };
}

/**
 * Writes the bundle as a gzip'd tarball laid out like the `--path.*` roots: `sys/`, `proc/`, `root/`
 * and the `kmsg` dump. It is staged in a private temporary directory first, so links stay links and
 * long sysfs paths get the tar headers they need.
 */
export async function writeBundle(output: string, entries: readonly CaptureEntry[], kmsg: Buffer | undefined): Promise<void> {
  const staging = await mkdtemp(path.join(os.tmpdir(), 'vfio-exporter-capture-'));
  try {
    for (const top of ['sys', 'proc', 'root']) await mkdir(path.join(staging, top));
    for (const entry of entries) {
      const target = path.join(staging, entry.path);
      if (!target.startsWith(staging + path.sep)) throw new Error(`refusing bundle path outside the bundle: ${entry.path}`);
      if (entry.kind === 'dir') {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      if (entry.kind === 'symlink') await symlink(entry.target, target);
      else await writeFile(target, entry.content, { mode: 0o644 });
    }
    const top = ['sys', 'proc', 'root'];
    if (kmsg) {
      await writeFile(path.join(staging, 'kmsg'), kmsg, { mode: 0o644 });
      top.push('kmsg');
    }
    await replaceFileSafely(output, (file) => pipeline(create({ gzip: true, cwd: staging, portable: true }, top), file));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
