import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir, waitFor, type TempDir } from '../helpers/alerting.js';
import { findBinary, repoRoot } from '../helpers/fixtures.js';
import { freePort } from '../helpers/ports.js';

/**
 * The lab host: Debian's kernel booted under QEMU (TCG) with an emulated Intel IOMMU, a second ICH9 AHCI
 * controller alone in its IOMMU group for passthrough (a disk behind it), this machine's root over 9p (read-only) and a
 * writable 9p directory through which `init.sh` reports and takes its cues. The exporter inside is
 * the single executable built from this checkout; its port is forwarded to 127.0.0.1.
 */
export interface Lab {
  /** The directory shared with the lab host (`/out` inside). */
  dir: string;
  /** `host:port` of the exporter inside, through QEMU's user network. */
  target: string;
  /** Milliseconds from QEMU's start to the lab's init running (its first progress line). */
  bootMs: number;
  /** Waits for `phase-<name>`; fails at once when the lab gave up or QEMU exited. Returns the lab's uptime then. */
  waitPhase(name: string, timeoutMs: number): Promise<number>;
  /** Creates `<name>` in the shared directory: release-disk, go-101, stop. */
  signal(name: string): void;
  read(name: string): string;
  /** The lab's serial console, its progress, and the exporter's log and starts, for a failure report. */
  report(): string;
  stop(): Promise<void>;
}

/** The SATA controller the lab adds for passthrough; q35's own AHCI is 00:1f.2, in the chipset group. */
export const labSataAddress = '0000:00:03.0';
/** The root port and the controller behind it, sharing one IOMMU group. */
export const labRootPortAddress = '0000:00:10.0';
export const labBehindPortAddress = '0000:01:00.0';
const labMemoryMiB = 2048;
/** The disk behind the lab's SATA controller: an MBR with one Linux partition from 1 MiB to its end. */
export const labDiskBytes = 16 * 1024 ** 2;
export const labPartitionBytes = labDiskBytes - 1024 ** 2;

/** A sparse raw disk image whose MBR holds one partition of type 0x83 (Linux), by LBA as the kernel reads it. */
function writeDiskImage(file: string): void {
  const sector = 512;
  const mbr = Buffer.alloc(sector);
  const entry = 446;
  mbr[entry + 4] = 0x83;
  mbr.writeUInt32LE((labDiskBytes - labPartitionBytes) / sector, entry + 8);
  mbr.writeUInt32LE(labPartitionBytes / sector, entry + 12);
  mbr.writeUInt16LE(0xaa55, 510);
  writeFileSync(file, mbr, { mode: 0o600 });
  truncateSync(file, labDiskBytes);
}

// no_timer_check: under TCG on a loaded machine the kernel's early check of the timer through the
// interrupt-remapped IO-APIC can miss its ticks and panic ("timer doesn't work through Interrupt-remapped IO-APIC").
const kernelCommandLine = 'console=ttyS0 intel_iommu=on no_timer_check panic=-1';

export async function startLab(): Promise<Lab> {
  const work: TempDir = tempDir('vfio-lab-');
  const dir = work.dir;
  const run = (command: string, args: string[], timeoutMs: number) =>
    execFileSync(command, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, encoding: 'utf8' });
  try {
    // Its own build directory: the packaging tests rebuild dist/ at the same time.
    run('sh', ['packaging/build-sea.sh', path.join(dir, 'bin')], 240_000);
    // The lab sees this machine's /tmp as its own tmpfs: everything it runs comes through the bin share, wherever the checkout is.
    copyFileSync(path.join(repoRoot, 'contrib/proxmox/vfio-guard.sh'), path.join(dir, 'bin/vfio-guard.sh'));
    run('sh', ['test/lab/build-initramfs.sh', dir], 120_000);
    writeDiskImage(path.join(dir, 'disk.img'));
  } catch (error) {
    work.remove();
    throw error;
  }
  writeFileSync(
    path.join(dir, 'lab.env'),
    [`OUT=${dir}`, `EXPORTER=${dir}/bin/vfio-exporter`, `GUARD=${dir}/bin/vfio-guard.sh`, `SATA=${labSataAddress}`, `BEHIND_PORT=${labBehindPortAddress}`].join('\n') + '\n',
  );
  // A boot that dies before init runs (the emulated machine, not the story) gets one more try.
  try {
    return await boot(work);
  } catch (error) {
    if (existsSync(path.join(dir, 'progress'))) {
      work.remove();
      throw error;
    }
    console.error(`the lab host did not boot; booting it once more:\n${(error as Error).message}`);
    return boot(work).catch((again: unknown) => {
      work.remove();
      throw again;
    });
  }
}

async function boot(work: TempDir): Promise<Lab> {
  const dir = work.dir;
  const port = await freePort();
  const file = (name: string) => path.join(dir, name);
  const read = (name: string) => (existsSync(file(name)) ? readFileSync(file(name), 'utf8') : '');
  // What a failed boot left behind.
  for (const name of ['stop', 'failed', 'progress', 'console.log']) rmSync(file(name), { force: true });
  const qemu = spawn(
    findBinary('qemu-system-x86_64'),
    [
      ...['-accel', 'tcg', '-smp', '2', '-m', String(labMemoryMiB), '-machine', 'q35,kernel-irqchip=split'],
      ...['-device', 'intel-iommu,intremap=on,caching-mode=on'],
      ...['-kernel', read('kernel').trim(), '-initrd', file('initrd.gz'), '-append', kernelCommandLine],
      ...['-device', `ich9-ahci,id=sata1,bus=pcie.0,addr=0x${labSataAddress.split(':')[2]!.split('.')[0]}`],
      ...['-drive', `file=${file('disk.img')},if=none,id=d0,format=raw`, '-device', 'ide-hd,drive=d0,bus=sata1.0'],
      // A root port without ACS: the controller behind it shares its group with the port (driver pcieport).
      ...['-device', 'pcie-root-port,id=rp1,bus=pcie.0,addr=0x10,chassis=1,disable-acs=true', '-device', 'ich9-ahci,id=sata2,bus=rp1,addr=0x0'],
      ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
      ...['-virtfs', `local,path=${dir},mount_tag=out,security_model=none,multidevs=remap`],
      ...['-virtfs', `local,path=${dir}/bin,mount_tag=bin,security_model=none,readonly=on,multidevs=remap`],
      ...['-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:9847`, '-device', 'virtio-net-pci,netdev=n0'],
      ...['-display', 'none', '-monitor', 'none', '-serial', `file:${file('console.log')}`, '-no-reboot'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const startedAt = Date.now();
  let qemuOutput = '';
  const append = (chunk: Buffer) => {
    qemuOutput += chunk.toString('utf8');
  };
  qemu.stdout.on('data', append);
  qemu.stderr.on('data', append);
  const exited = new Promise<void>((resolve) => qemu.once('exit', () => resolve()));
  const halt = async () => {
    writeFileSync(file('stop'), '');
    const deadline = setTimeout(() => qemu.kill('SIGKILL'), 15_000);
    if (qemu.exitCode === null && qemu.signalCode === null) await exited;
    clearTimeout(deadline);
  };
  const lab: Lab = {
    dir,
    target: `127.0.0.1:${port}`,
    bootMs: 0,
    async waitPhase(name, timeoutMs) {
      const uptime = await waitFor(`lab phase ${name}`, timeoutMs, () => {
        if (existsSync(file('failed'))) throw new Error(`the lab gave up: ${read('failed')}`);
        if (qemu.exitCode !== null || qemu.signalCode !== null) throw new Error(`the lab's QEMU exited (${qemu.exitCode ?? qemu.signalCode}): ${qemuOutput}`);
        // init.sh renames a complete file into place.
        return existsSync(file(`phase-${name}`)) ? Number(read(`phase-${name}`)) : undefined;
      });
      return uptime;
    },
    signal: (name) => writeFileSync(file(name), ''),
    read,
    report: () =>
      [
        ['QEMU', qemuOutput],
        ['console', read('console.log')],
        ['progress', read('progress')],
        ['exporter starts', read('exporter-starts')],
        ['exporter log', read('exporter.log')],
      ]
        .map(([title, text]) => `----- lab ${title} -----\n${text}`)
        .join('\n'),
    async stop() {
      await halt();
      work.remove();
    },
  };
  try {
    await waitFor('the lab host to boot', 120_000, () => {
      if (qemu.exitCode !== null) throw new Error(`the lab's QEMU exited (${qemu.exitCode}): ${qemuOutput}`);
      return read('progress') ? true : undefined;
    });
  } catch (error) {
    const report = lab.report();
    await halt();
    throw new Error(`${(error as Error).message}\n${report}`);
  }
  lab.bootMs = Date.now() - startedAt;
  return lab;
}
