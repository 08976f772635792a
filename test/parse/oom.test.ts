import { describe, expect, it } from 'vitest';
import { classifyKernelEvent } from '../../src/parse/kernel-events.js';
import { parseFlatKeyed } from '../../src/parse/flat-keyed.js';
import { parseOomLine, vmidFromCgroupPath } from '../../src/parse/oom.js';

describe('OOM killer lines', () => {
  it('parses the seed summary', () => {
    expect(
      parseOomLine(
        'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=ns,mems_allowed=0,global_oom,task_memcg=/qemu.slice/101.scope,task=kvm,pid=32969,uid=0',
      ),
    ).toEqual({
      kind: 'summary',
      constraint: 'CONSTRAINT_NONE',
      nodemask: '(null)',
      cpuset: 'ns',
      memsAllowed: '0',
      oomMemcg: undefined,
      globalOom: true,
      taskMemcg: '/qemu.slice/101.scope',
      comm: 'kvm',
      pid: 32969,
      uid: 0,
    });
  });

  it('parses a memcg summary and node lists holding commas', () => {
    const summary = parseOomLine(
      'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=0-1,3,cpuset=/,mems_allowed=0-1,3,oom_memcg=/qemu.slice/106.scope,task_memcg=/qemu.slice/106.scope/sub,task=kvm,pid=7101,uid=0',
    );
    expect(summary).toMatchObject({ constraint: 'CONSTRAINT_MEMCG', nodemask: '0-1,3', memsAllowed: '0-1,3', globalOom: false, oomMemcg: '/qemu.slice/106.scope', taskMemcg: '/qemu.slice/106.scope/sub', pid: 7101 });
  });

  it('parses a summary cut short by the record size limit', () => {
    expect(parseOomLine('oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0')).toMatchObject({ constraint: 'CONSTRAINT_MEMCG', pid: undefined, taskMemcg: undefined });
  });

  it('parses the seed kill line', () => {
    expect(
      parseOomLine(
        'Out of memory: Killed process 32969 (kvm) total-vm:17339840kB, anon-rss:15797740kB, file-rss:1536kB, shmem-rss:0kB, UID:0 pgtables:31152kB oom_score_adj:0',
      ),
    ).toEqual({
      kind: 'kill',
      reason: 'Out of memory',
      pid: 32969,
      comm: 'kvm',
      totalVmKiB: 17339840,
      anonRssKiB: 15797740,
      fileRssKiB: 1536,
      shmemRssKiB: 0,
      uid: 0,
      pgtablesKiB: 31152,
      oomScoreAdj: 0,
    });
  });

  it('parses the kill line of every kernel generation', () => {
    const cases: [string, Record<string, unknown>][] = [
      ['Memory cgroup out of memory: Killed process 14441 (qemu-system-x86) total-vm:1787968kB, anon-rss:156540kB, file-rss:24396kB, shmem-rss:0kB, UID:0 pgtables:456kB oom_score_adj:-100', { reason: 'Memory cgroup out of memory', comm: 'qemu-system-x86', oomScoreAdj: -100 }],
      ['Out of memory: Killed process 18812 (kvm) total-vm:4600960kB, anon-rss:4238180kB, file-rss:3908kB, shmem-rss:0kB, UID:0', { reason: 'Out of memory', uid: 0, pgtablesKiB: undefined }],
      ['Killed process 2211 (kvm) total-vm:17339840kB, anon-rss:15797740kB, file-rss:1536kB, shmem-rss:0kB', { reason: undefined, pid: 2211, uid: undefined }],
      ['Killed process 2603 (flasherav) total-vm:1498536kB, anon-rss:721784kB, file-rss:4228kB', { shmemRssKiB: 0, anonRssKiB: 721784 }],
      ['Killed process 21945 (tidb-server), UID 1000, total-vm:33027492kB, anon-rss:31303276kB, file-rss:0kB, shmem-rss:0kB', { comm: 'tidb-server', uid: 1000 }],
      ['Killed process 215701, UID 679, (java) total-vm:11017300kB, anon-rss:7152432kB, file-rss:1232kB', { comm: 'java', uid: 679 }],
      ['Out of memory (oom_kill_allocating_task): Killed process 9 (a (b) c) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:5 pgtables:6kB oom_score_adj:7', { reason: 'Out of memory (oom_kill_allocating_task)', comm: 'a (b) c', shmemRssKiB: 4 }],
    ];
    for (const [line, expected] of cases) expect(parseOomLine(line), line).toMatchObject({ kind: 'kill', ...expected });
  });

  it('parses the context lines around a kill', () => {
    expect(parseOomLine('Memory cgroup out of memory: Kill process 3345 (qemu-system-x86) score 1003 or sacrifice child')).toEqual({ kind: 'chosen', reason: 'Memory cgroup out of memory', pid: 3345, comm: 'qemu-system-x86', score: 1003 });
    expect(parseOomLine('Task in /machine.slice/machine-qemu\\x2d1\\x2dwin10.scope killed as a result of limit of /machine.slice')).toEqual({ kind: 'memcg-context', taskMemcg: '/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope', oomMemcg: '/machine.slice' });
    expect(parseOomLine('Tasks in /qemu.slice/106.scope are going to be killed due to memory.oom.group set')).toEqual({ kind: 'group-kill', memcg: '/qemu.slice/106.scope' });
    expect(parseOomLine('kvm invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0')).toEqual({ kind: 'invoked', comm: 'kvm' });
    expect(parseOomLine('oom_reaper: reaped process 32969 (kvm), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB')).toEqual({ kind: 'reaped', pid: 32969, comm: 'kvm' });
  });

  it('ignores what only resembles a kill line', () => {
    for (const line of [
      'Out of memory: Killed process abc (kvm) total-vm:17339840kB',
      'Killed process 5 (x)',
      'systemd[1]: 101.scope: A process of this unit has been killed by the OOM killer.',
      'Out of memory and no killable processes...',
      'vmbr0: port 6(tap101i0) entered disabled state',
    ]) {
      expect(parseOomLine(line), line).toBeUndefined();
    }
  });
});

describe('VM from cgroup path', () => {
  it('reads Proxmox and libvirt scopes wherever they sit', () => {
    expect(vmidFromCgroupPath('/qemu.slice/101.scope')).toBe('101');
    expect(vmidFromCgroupPath('/system.slice/ci-runner.service/qemu.slice/977.scope')).toBe('977');
    expect(vmidFromCgroupPath('/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope')).toBe('win10');
    expect(vmidFromCgroupPath('/machine.slice/machine-qemu\\x2d12\\x2dwin11\\x2dgaming.scope/libvirt/emulator')).toBe('win11-gaming');
    expect(vmidFromCgroupPath('/machine/qemu-3-nas.libvirt-qemu/emulator')).toBe('nas');
    expect(vmidFromCgroupPath('/machine/nas.libvirt-qemu')).toBe('nas');
  });

  it('gives nothing for other cgroups', () => {
    for (const cgroup of ['/', '/system.slice/pvestatd.service', '/qemu.slice', '/user.slice/qemu.slice.scope', '/machine.slice/machine-lxc\\x2d1\\x2dct.scope']) {
      expect(vmidFromCgroupPath(cgroup), cgroup).toBeUndefined();
    }
  });
});

describe('passthrough trouble lines', () => {
  it('classifies VFIO pin failures, IOMMU faults, BAR reservation failures and unviable groups', () => {
    const cases: [string, string | undefined][] = [
      ['vfio_pin_pages_remote: RLIMIT_MEMLOCK (67108864) exceeded', 'vfio_pin_failed'],
      ['vfio_pin_page_external: Task qemu-system-x86 (5120) RLIMIT_MEMLOCK (67108864) exceeded', 'vfio_pin_failed'],
      ['DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0xfffff000 [fault reason 0x06] PTE Read access is not set', 'iommu_fault'],
      ['DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x0 [fault reason 0x25] Blocked a compatibility format interrupt request', 'iommu_fault'],
      ['DMAR: DRHD: handling fault status reg 3', undefined],
      ['DMAR: DRHD: handling fault status reg 40', 'iommu_fault'],
      ['vfio-pci 0000:0a:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0037 address=0x7b657064 flags=0x0000]', 'iommu_fault'],
      ["vfio-pci 0000:01:00.0: BAR 3: can't reserve [mem 0xc0000000-0xc1ffffff 64bit pref]", 'bar_reserve_failed'],
      ["pci 0000:00:1f.4: BAR 0: can't reserve [mem 0xa1220000-0xa12200ff 64bit]", undefined],
      ['igb 0000:01:00.1: Device added to live group 1!', 'group_not_viable'],
      ['mlx5_core 0000:3b:00.0: RLIMIT_MEMLOCK (65536) exceeded', undefined],
      ['DMAR: IOMMU enabled', undefined],
    ];
    for (const [line, kind] of cases) expect(classifyKernelEvent(line, true), line).toBe(kind);
  });

  it('believes only QEMU\'s unviable-group message from user space', () => {
    expect(classifyKernelEvent('QEMU[4021]: vfio 0000:01:00.1: group 1 is not viable', false)).toBe('group_not_viable');
    expect(classifyKernelEvent('vfio_pin_pages_remote: RLIMIT_MEMLOCK (67108864) exceeded', false)).toBeUndefined();
    expect(classifyKernelEvent('DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0x0', false)).toBeUndefined();
  });
});

describe('flat keyed files', () => {
  it('reads vmstat, memory.events, memory.oom_control and the btime line of /proc/stat', () => {
    expect(parseFlatKeyed('pgfault 14838493\noom_kill 3\n').get('oom_kill')).toBe(3);
    expect(Object.fromEntries(parseFlatKeyed('low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n'))).toEqual({ low: 0, high: 0, max: 12, oom: 2, oom_kill: 1, oom_group_kill: 0 });
    const stat = parseFlatKeyed('cpu  36926 20 13267 198550\ncpu0 17607 12 5913 101180\nintr 2683631 0 0\nbtime 1709054088\nprocesses 19881\n');
    expect([stat.get('btime'), stat.has('cpu0'), stat.has('intr')]).toEqual([1709054088, false, false]);
  });
});
