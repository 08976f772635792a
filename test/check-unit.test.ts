import { describe, expect, it } from 'vitest';
import type { HostMemoryFacts } from '../src/collectors/memory.js';
import type { Snapshot } from '../src/collectors/types.js';
import type { Vm } from '../src/collectors/vm-types.js';
import { pinnedCommitment, startHeadroom } from '../src/check/headroom.js';
import { findProblems, memoryThatFitsMiB } from '../src/check/problems.js';
import { buildReport, judgeStart } from '../src/check/report.js';
import { vm as makeVm } from './helpers/vms.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** The seed host's memory: 9 GiB available, 6 GiB ARC above a 0.95 GiB floor. */
const seedMemory: HostMemoryFacts = {
  totalBytes: 32617444 * 1024,
  availableBytes: 9 * GiB,
  freeBytes: 3 * GiB,
  swapTotalBytes: 0,
  swapFreeBytes: 0,
  hugepagesTotal: 0,
  hugepagesFree: 0,
  hugepageSizeBytes: 2 * 1024 ** 2,
  hugepagePools: [],
  zfsArc: { sizeBytes: 6 * GiB, minBytes: 1019295744, maxBytes: 16 * GiB },
  pressure: undefined,
  recent: [],
};

/** The seed's VM 101: 16 GiB, ballooning down to 8 GiB, the SATA controller, stopped, on boot. */
const vm = (overrides: Partial<Vm>): Vm =>
  makeVm('101', {
    name: 'nas',
    startOnBoot: true,
    memoryConfiguredBytes: 16 * GiB,
    balloonEnabled: true,
    balloonMinBytes: 8 * GiB,
    devices: [{ pciAddress: '0000:00:17.0', slot: 'hostpci0', present: true }],
    ...overrides,
  });

const snapshotWith = (vms: Vm[], memory: HostMemoryFacts | null = seedMemory): Snapshot => ({
  takenAtMs: Date.parse('2026-02-27T11:28:00Z'),
  outcomes: [],
  facts: { vm: { vms }, ...(memory ? { memory } : {}) },
});

describe('start headroom', () => {
  it('counts MemAvailable plus ARC above c_min, less the reserve', () => {
    const headroom = startHeadroom(vm({}), seedMemory, GiB)!;
    expect(headroom.pool).toBe('memory');
    expect(headroom.availableBytes).toBe(9 * GiB + 6 * GiB - 1019295744 - GiB);
    expect(headroom.headroomBytes).toBe(headroom.availableBytes - 16 * GiB);
    expect(headroom.headroomBytes / GiB).toBeCloseTo(-2.95, 2);
    expect(startHeadroom(vm({ memoryConfiguredBytes: 12 * GiB }), seedMemory, GiB)!.headroomBytes / GiB).toBeCloseTo(1.05, 2);
  });
  /** Pools of 2 MiB and 1 GiB pages, free and reserved pages as given. */
  const pools = (twoMiB: [number, number, number], oneGiB: [number, number, number]): HostMemoryFacts['hugepagePools'] =>
    ([[2 * MiB, twoMiB], [GiB, oneGiB]] as const).map(([pageBytes, [pages, freePages, reservedPages]]) => ({ pageBytes, pages, freePages, reservedPages, surplusPages: 0, nodes: [] }));
  const demand = (...sizes: [string, number, number][]): Vm['hugepageDemand'] => sizes.map(([size, pageBytes, bytes]) => ({ size, pageBytes, bytes }));
  it('judges a hugepage VM against the free, unreserved pages of its own pool, without the reserve', () => {
    const memory = { ...seedMemory, hugepagePools: pools([4096, 2048, 0], [8, 8, 2]) };
    expect(startHeadroom(vm({ hugepages: '2M', hugepageDemand: demand(['2M', 2 * MiB, 4 * GiB]), memoryConfiguredBytes: 4 * GiB }), memory, GiB)).toEqual({
      pool: 'hugepages',
      size: '2M',
      availableBytes: 4 * GiB,
      requiredBytes: 4 * GiB,
      headroomBytes: 0,
    });
    // The default-size pool has room; the 1G pool has 6 pages not promised to a mapping: 2 short.
    expect(startHeadroom(vm({ hugepages: '1G', hugepageDemand: demand(['1G', GiB, 8 * GiB]), memoryConfiguredBytes: 8 * GiB }), memory, GiB)!.headroomBytes).toBe(-2 * GiB);
  });
  it('judges a VM on mixed page sizes by its tightest pool, and one whose pool is unknown not at all', () => {
    const memory = { ...seedMemory, hugepagePools: pools([4096, 4096, 0], [2, 1, 0]) };
    const mixed = vm({ hugepages: '1G+2M', hugepageDemand: demand(['1G', GiB, 2 * GiB], ['2M', 2 * MiB, 2 * GiB]), memoryConfiguredBytes: 4 * GiB });
    expect(startHeadroom(mixed, memory, GiB)).toMatchObject({ size: '1G', headroomBytes: -GiB });
    expect(startHeadroom(vm({ hugepages: 'any', hugepageDemand: undefined }), memory, GiB)).toBeUndefined();
  });
  it('treats a host without ZFS as having no reclaimable ARC', () => {
    expect(startHeadroom(vm({}), { ...seedMemory, zfsArc: undefined }, GiB)!.availableBytes).toBe(8 * GiB);
  });
  it('commits running and on-boot passthrough VMs against MemTotal less reserve, ARC floor and every hugepage pool, each pool alone', () => {
    const memory = { ...seedMemory, hugepagePools: pools([1024, 1024, 0], [0, 0, 0]) };
    const [ordinary, twoMiB, oneGiB] = pinnedCommitment(
      [
        vm({}),
        vm({ vmid: '102', running: true, startOnBoot: false, memoryConfiguredBytes: 8 * GiB }),
        vm({ vmid: '103', startOnBoot: false }),
        vm({ vmid: '104', devices: [] }),
        vm({ vmid: '105', hugepages: '2M', hugepageDemand: demand(['2M', 2 * MiB, 2 * GiB]), memoryConfiguredBytes: 2 * GiB }),
        vm({ vmid: '106', hugepages: '1G', hugepageDemand: demand(['1G', GiB, 4 * GiB]), memoryConfiguredBytes: 4 * GiB }),
      ],
      memory,
      GiB,
    );
    expect(ordinary).toEqual({ pool: 'memory', size: undefined, committedBytes: 24 * GiB, capacityBytes: 32617444 * 1024 - GiB - 1019295744 - 2 * GiB, vmids: ['101', '102'] });
    expect(twoMiB).toEqual({ pool: 'hugepages', size: '2M', committedBytes: 2 * GiB, capacityBytes: 2 * GiB, vmids: ['105'] });
    expect(oneGiB).toEqual({ pool: 'hugepages', size: '1G', committedBytes: 4 * GiB, capacityBytes: 0, vmids: ['106'] });
  });
  it('judges the next start by a pending memory change', () => {
    expect(startHeadroom(vm({ pending: { memoryConfiguredBytes: 12 * GiB, balloonMinBytes: undefined } }), seedMemory, GiB)!.requiredBytes).toBe(12 * GiB);
  });
});

describe('problems and verdicts', () => {
  it('the seed VM: would OOM at 16 GiB with ballooning on, and the fix names the size that fits', () => {
    const problems = findProblems({ snapshot: snapshotWith([vm({})]), reserveBytes: GiB });
    expect(problems.map((problem) => [problem.alert, problem.severity])).toEqual([
      ['VfioPassthroughVMStartWouldOOM', 'critical'],
      ['VfioPassthroughVMBalloonEnabled', 'warning'],
    ]);
    expect(problems[0]!.summary).toBe(
      'VM 101 (nas) needs 16.0 GiB pinned but the host can give 13.1 GiB (MemAvailable + reclaimable ZFS ARC − reserve): starting it now triggers the OOM killer, short by 2.9 GiB.',
    );
    expect(problems[0]!.fix).toContain('qm set 101 --balloon 0 --memory 13312');
    const verdict = judgeStart(snapshotWith([vm({})]), problems, '101', GiB);
    expect(verdict.exitCode).toBe(1);
    expect(verdict.verdict).toBe('refuse');
  });
  it('a host with less than 1 GiB to give: the fix names a size in 128 MiB steps, never --memory 0', () => {
    // A 2 GiB host: 1.8 GiB available less the 1 GiB reserve leaves 0.8 GiB for a 1920 MiB VM.
    const small = { ...seedMemory, availableBytes: 1843 * MiB, zfsArc: undefined };
    const lab = vm({ memoryConfiguredBytes: 1920 * MiB, balloonMinBytes: GiB });
    const [wouldOom] = findProblems({ snapshot: snapshotWith([lab], small), reserveBytes: GiB });
    expect(wouldOom!.fix).toContain('qm set 101 --balloon 0 --memory 768;');
    expect(memoryThatFitsMiB(819 * MiB)).toBe(768);
    expect(memoryThatFitsMiB(13.1 * GiB)).toBe(13312);
    expect(memoryThatFitsMiB(100 * MiB)).toBe(0);
    const [nothing] = findProblems({ snapshot: snapshotWith([lab], { ...small, availableBytes: GiB + 100 * MiB }), reserveBytes: GiB });
    expect(nothing!.fix).toBe('The host has no memory to give this VM now: free host memory first (stop other VMs, cap the ZFS ARC with zfs_arc_max), and turn ballooning off: qm set 101 --balloon 0.');
    expect(nothing!.fix).not.toContain('--memory');
  });
  it('the fixed VM: 12 GiB, balloon off, fits and raises nothing', () => {
    const fixed = vm({ memoryConfiguredBytes: 12 * GiB, balloonEnabled: false, balloonMinBytes: 0 });
    const snapshot = snapshotWith([fixed]);
    expect(findProblems({ snapshot, reserveBytes: GiB })).toEqual([]);
    const verdict = judgeStart(snapshot, [], '101', GiB);
    expect(verdict).toMatchObject({ exitCode: 0, verdict: 'fits' });
    expect(verdict.reason).toBe('VM 101 needs 12.0 GiB pinned and the host can give 13.1 GiB: 1.1 GiB to spare');
  });
  it('a floor equal to the memory is not a ballooning problem', () => {
    const problems = findProblems({ snapshot: snapshotWith([vm({ memoryConfiguredBytes: 12 * GiB, balloonMinBytes: 12 * GiB })]), reserveBytes: GiB });
    expect(problems).toEqual([]);
  });
  it('cannot judge an unknown VM, a host whose memory is unreadable, or without VM facts', () => {
    expect(judgeStart(snapshotWith([vm({})]), [], '999', GiB)).toMatchObject({ exitCode: 2, reason: 'no VM 999 on this host' });
    expect(judgeStart(snapshotWith([vm({ memoryConfiguredBytes: 12 * GiB })], null), [], '101', GiB)).toMatchObject({ exitCode: 2 });
    expect(judgeStart({ takenAtMs: 0, outcomes: [], facts: {} }, [], '101', GiB)).toMatchObject({ exitCode: 2 });
  });
  it('a running VM is not judged for start', () => {
    expect(judgeStart(snapshotWith([vm({ running: true })]), [], '101', GiB)).toMatchObject({ exitCode: 0, reason: 'VM 101 is already running' });
  });
  it('the report puts a stopped VM with its headroom and nulls where nothing is known', () => {
    const report = buildReport(snapshotWith([vm({})]), { reserveBytes: GiB, vmid: '101' });
    expect(report.vms[0]!.startHeadroom!.headroomBytes).toBeLessThan(0);
    expect(report.vms[0]!.rssBytes).toBeNull();
    expect(report.verdict!.exitCode).toBe(1);
    expect(report.problems[0]!.severity).toBe('critical');
  });
});
