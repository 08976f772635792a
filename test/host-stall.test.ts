import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { fileTree } from '../src/host/fs.js';
import { WebConfigSource } from '../src/web/source.js';
import { scrape, startExporterProcess, waitReady } from './helpers/exporter-process.js';
import { copyHost } from './helpers/tmp-host.js';

const tmpfsMagic = 0x01021994;
/** Where a copied host is read synchronously (a tmpfs) and where through the thread pool (the disk, unless /tmp is a tmpfs too). */
const roots = ['/dev/shm', os.tmpdir()].filter((dir) => existsSync(dir));

const mkfifo = (file: string): void => {
  rmSync(file, { force: true });
  execFileSync('mkfifo', [file]);
};

describe('host files that could block', () => {
  it('reads synchronously only under a memory filesystem', async () => {
    expect((await fileTree('/proc')).inMemory).toBe(true);
    expect((await fileTree('/sys')).inMemory).toBe(true);
    expect((await fileTree('/dev/shm')).inMemory).toBe(true);
    expect((await fileTree(os.tmpdir())).inMemory).toBe(statfsSync(os.tmpdir()).type === tmpfsMagic);
    expect((await fileTree('/nonexistent/sys')).inMemory).toBe(false);
  });

  it('a FIFO as the web config is refused at once, not waited on', () => {
    const { root } = copyHost('suprox');
    const file = path.join(root, 'web.yml');
    execFileSync('mkfifo', [file]);
    expect(() => new WebConfigSource(file, silentLogger)).toThrow(/web\.yml: not a regular file/);
  });

  it.each(roots)('SIGTERM stops the exporter within seconds with FIFOs in its tree under %s', async (base) => {
    const { root, flags } = copyHost('suprox', base);
    for (const file of ['sys/devices/pci0000:00/0000:00:17.0/vendor', 'proc/1432/status', 'proc/meminfo', 'root/etc/pve/nodes/suprox/qemu-server/101.conf']) {
      mkfifo(path.join(root, file));
    }
    const exporter = await startExporterProcess([...flags, '--sample.interval=1s']);
    await waitReady(exporter.port);
    const text = await scrape(exporter.port);
    expect(text).toContain('vfio_collector_success{collector="pci"} 0');
    expect(text).toContain('vfio_vm_running{vmid="100"} 1');
    const exited = new Promise<number | null>((resolve) => exporter.child.once('exit', resolve));
    const started = Date.now();
    exporter.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
