import { stat } from 'node:fs/promises';
import { addModprobeFile, emptyModprobeConfig, parseInitramfsModules, parsePciAliases, type ModprobeConfig, type ModuleAlias } from '../parse/boot-binding.js';
import { isMissing, listDir, readOptionalText } from './fs.js';
import { procPath, rootPath, type HostPaths } from './paths.js';

/** modprobe.d directories in kmod's order of precedence (libkmod/libkmod.c, default_config_paths): a file name in an earlier one hides the same name later. */
export const modprobeDirs = ['etc/modprobe.d', 'run/modprobe.d', 'usr/local/lib/modprobe.d', 'usr/lib/modprobe.d', 'lib/modprobe.d'];

/** initramfs-tools (Debian, Proxmox): modules loaded early from the initramfs, before udev probes drivers. */
export const initramfsModulesFile = 'etc/initramfs-tools/modules';

export interface BootConfig {
  /** The running kernel's release (`/proc/sys/kernel/osrelease`). */
  release: string;
  cmdline: string;
  modprobe: ModprobeConfig;
  /** Modules listed in initramfs-tools' modules file; undefined when the host has no such file. */
  initramfsModules: string[] | undefined;
}

/** The kernel release, command line and module configuration, all under the `--path.*` roots. */
export async function readBootConfig(paths: HostPaths): Promise<BootConfig> {
  const [release, cmdline, initramfs] = await Promise.all([
    readOptionalText(procPath(paths, 'sys/kernel/osrelease')),
    readOptionalText(procPath(paths, 'cmdline')),
    readOptionalText(rootPath(paths, initramfsModulesFile)),
  ]);
  if (release === undefined) throw new Error(`${procPath(paths, 'sys/kernel/osrelease')}: missing`);
  const files = new Map<string, string>();
  for (const dir of modprobeDirs)
    for (const name of await listDir(rootPath(paths, dir))) if (name.endsWith('.conf') && !files.has(name)) files.set(name, `${dir}/${name}`);
  const modprobe = emptyModprobeConfig();
  // kmod reads the files sorted by name, whichever directory each comes from.
  for (const name of [...files.keys()].sort()) {
    const file = files.get(name)!;
    const text = await readOptionalText(rootPath(paths, file));
    if (text !== undefined) addModprobeFile(modprobe, `/${file}`, text);
  }
  return { release: release.trim(), cmdline: cmdline ?? '', modprobe, initramfsModules: initramfs === undefined ? undefined : parseInitramfsModules(initramfs) };
}

export const modulesAliasFile = (paths: HostPaths, release: string): string => rootPath(paths, 'lib/modules', release, 'modules.alias');

/** modules.alias is a few MB and changes only when depmod runs: parsed again only when its size or mtime changes. */
export class ModulesAliasCache {
  private cached: { file: string; version: string; aliases: ModuleAlias[] } | undefined;

  /** The PCI aliases of the kernel `release`, or undefined when its modules.alias is missing (a kernel without modules installed). */
  async read(paths: HostPaths, release: string): Promise<ModuleAlias[] | undefined> {
    const file = modulesAliasFile(paths, release);
    let version: string;
    try {
      const info = await stat(file);
      version = `${info.size}:${info.mtimeMs}`;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (this.cached?.file !== file || this.cached.version !== version) {
      const text = await readOptionalText(file, 64 * 1024 * 1024);
      if (text === undefined) return undefined;
      this.cached = { file, version, aliases: parsePciAliases(text) };
    }
    return this.cached.aliases;
  }
}
