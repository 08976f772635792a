/** `/proc/<pid>/cgroup`: `hierarchy-ID:controller-list:cgroup-path` per line (cgroups(7)). */
export interface ProcCgroups {
  /** The v2 (unified) hierarchy's path, line `0::<path>`. */
  unified: string | undefined;
  /** The v1 `memory` controller's path, when the kernel mounts one. */
  memoryV1: string | undefined;
}

export function parseProcCgroup(text: string): ProcCgroups {
  let unified: string | undefined;
  let memoryV1: string | undefined;
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    if (match[1] === '0' && match[2] === '') unified = match[3];
    else if (match[2]!.split(',').includes('memory')) memoryV1 = match[3];
  }
  return { unified, memoryV1 };
}

/**
 * The VM's own cgroup: the nearest enclosing systemd scope directly under `qemu.slice` (Proxmox
 * `qemu.slice/101.scope`) or `machine.slice` (libvirt `machine-qemu\x2d1\x2dwin10.scope`, whose emulator
 * sits in `.../libvirt/emulator` on cgroup v2). Undefined for any other cgroup (a login session, a
 * service): its memory is not the VM's.
 */
export function vmScopePath(cgroupPath: string): string | undefined {
  const parts = cgroupPath.split('/');
  const scope = parts.findLastIndex((part, index) => part.endsWith('.scope') && /^(qemu|machine)\.slice$/.test(parts[index - 1] ?? ''));
  return scope === -1 ? undefined : parts.slice(0, scope + 1).join('/');
}
