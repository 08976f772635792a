import { ModulesAliasCache, readBootConfig } from '../host/boot-binding.js';
import type { PciDeviceInstance } from '../host/pci-bus.js';
import {
  cmdlineVfioIds, modulesForModalias, parseModalias, parseVfioPciIds, vfioIdMatches,
  type ModprobeDirective, type ModuleAlias, type PciIds, type VfioPciId,
} from '../parse/boot-binding.js';
import { readEachPciDevice } from './each-pci-device.js';
import type { CollectorDefinition } from './types.js';

/** Drivers that leave a device to VFIO (vfio-pci itself, pci-stub) are no host module. */
const vfioFriendly = new Set(['vfio_pci', 'pci_stub']);
export const isHostModule = (module: string): boolean => !vfioFriendly.has(module);

export interface BootBindingDevice {
  address: string;
  ids: PciIds;
  /** Modules whose aliases match the device (lspci -k "Kernel modules"); undefined when modules.alias is missing. */
  modules: string[] | undefined;
  /** Where a vfio-pci `ids=` covering the device comes from. */
  vfioIds: { source: 'cmdline' | 'modprobe'; id: string; directive: ModprobeDirective | undefined }[];
  /** Host modules held back until vfio-pci has loaded (`softdep <m> pre: vfio-pci`) or kept from loading (`blacklist <m>`). */
  heldBack: string[];
  /** vfio-pci's ids cover the device and every host module that would claim it is held back; undefined when modules are unknown. */
  reserved: boolean | undefined;
}

export interface BootBindingFacts {
  release: string;
  devices: BootBindingDevice[];
  /** vfio-pci is listed in /etc/initramfs-tools/modules; undefined without initramfs-tools. */
  vfioInInitramfs: boolean | undefined;
}

declare module './types.js' {
  interface FactsByCollector {
    boot_binding: BootBindingFacts;
  }
}

export const bootBindingCollector: CollectorDefinition<'boot_binding'> = {
  name: 'boot_binding',
  description: 'which driver claims each PCI device at the next boot: modules.alias, vfio-pci ids, modprobe.d softdeps and blacklists, initramfs modules',
  defaultEnabled: true,
  create(_settings, log) {
    const aliasCache = new ModulesAliasCache();
    // A device's modalias is made from its ids: read once per device instance. The modules matching a
    // modalias are found once per modules.alias (a few thousand patterns tried on each).
    const modaliases = new WeakMap<PciDeviceInstance, string | undefined>();
    let modulesByModalias = { aliases: undefined as readonly ModuleAlias[] | undefined, modules: new Map<string, string[]>() };
    const modulesFor = (aliases: readonly ModuleAlias[], modalias: string): string[] => {
      if (modulesByModalias.aliases !== aliases) modulesByModalias = { aliases, modules: new Map() };
      let modules = modulesByModalias.modules.get(modalias);
      if (modules === undefined) {
        modules = modulesForModalias(aliases, modalias);
        modulesByModalias.modules.set(modalias, modules);
      }
      return modules;
    };
    // Each device as last built, by address and modalias, for the configuration it was built with: a
    // sample that finds the same devices and configuration hands back the same facts, whose text is kept.
    let built = { settings: '', devices: new Map<string, BootBindingDevice>() };
    let last: BootBindingFacts | undefined;
    return {
      async collect(context) {
        const { paths } = context;
        const errors: string[] = [];
        const config = await readBootConfig(paths);
        const aliases = await aliasCache.read(paths, config.release);
        if (aliases === undefined) errors.push(`lib/modules/${config.release}/modules.alias: missing under --path.rootfs; kernel modules unknown`);
        const cmdlineIds = parseVfioPciIds(cmdlineVfioIds(config.cmdline) ?? '').map((id) => ({ source: 'cmdline' as const, id, directive: undefined }));
        const modprobeIds = config.modprobe.vfioIds.flatMap((directive) => parseVfioPciIds(directive.ids).map((id) => ({ source: 'modprobe' as const, id, directive })));
        const allIds: { source: 'cmdline' | 'modprobe'; id: VfioPciId; directive: ModprobeDirective | undefined }[] = [...cmdlineIds, ...modprobeIds];
        const settings = JSON.stringify([config.cmdline, config.modprobe.vfioIds, [...config.modprobe.softdepAfterVfio], [...config.modprobe.blacklisted]]);
        const previous = built.settings === settings && aliases === modulesByModalias.aliases ? built.devices : new Map<string, BootBindingDevice>();
        const next = new Map<string, BootBindingDevice>();
        const { values: devices, errors: deviceErrors } = await readEachPciDevice(context, 'boot_binding', log, async (tree, { address, instance }): Promise<BootBindingDevice | undefined> => {
          let modalias = modaliases.get(instance);
          if (!modaliases.has(instance)) {
            modalias = instance.attributes.has('modalias') ? (await tree.read(`${instance.dir}/modalias`)).trim() : undefined;
            modaliases.set(instance, modalias);
          }
          if (modalias === undefined) return undefined;
          const key = `${address} ${modalias}`;
          const same = previous.get(key);
          if (same) {
            next.set(key, same);
            return same;
          }
          const ids = parseModalias(modalias);
          const modules = aliases === undefined ? undefined : modulesFor(aliases, modalias);
          const vfioIds = allIds.filter(({ id }) => vfioIdMatches(id, ids)).map(({ source, id, directive }) => ({ source, id: id.text, directive }));
          const hostModules = (modules ?? []).filter(isHostModule);
          const heldBack = hostModules.filter((module) => config.modprobe.softdepAfterVfio.has(module) || config.modprobe.blacklisted.has(module));
          const reserved = modules === undefined ? undefined : vfioIds.length > 0 && heldBack.length === hostModules.length;
          const device = { address, ids, modules, vfioIds, heldBack, reserved };
          next.set(key, device);
          return device;
        });
        built = { settings, devices: next };
        errors.push(...deviceErrors);
        const vfioInInitramfs = config.initramfsModules?.includes('vfio_pci');
        if (
          last === undefined ||
          last.release !== config.release ||
          last.vfioInInitramfs !== vfioInInitramfs ||
          last.devices.length !== devices.length ||
          last.devices.some((device, index) => device !== devices[index])
        )
          last = { release: config.release, devices, vfioInInitramfs };
        return { facts: last, errors };
      },
    };
  },
  render({ devices, vfioInInitramfs }, sink) {
    const module = sink.gauge('vfio_pci_device_boot_module_info', "A kernel module whose alias matches the PCI device (lspci -k's Kernel modules); value is always 1.", ['pci_address', 'module']);
    const reserved = sink.gauge(
      'vfio_pci_device_boot_vfio_reserved',
      '1 when vfio-pci claims the PCI device at boot: its ids cover it and every host module that could claim it loads after vfio-pci or is blacklisted.',
      ['pci_address'],
    );
    for (const device of devices) for (const name of device.modules ?? []) module({ pci_address: device.address, module: name }, 1);
    for (const device of devices) if (device.reserved !== undefined) reserved({ pci_address: device.address }, device.reserved ? 1 : 0);
    if (vfioInInitramfs !== undefined) sink.gauge('vfio_boot_initramfs_vfio_pci', '1 when /etc/initramfs-tools/modules lists vfio-pci, so it loads from the initramfs.')({}, vfioInInitramfs ? 1 : 0);
  },
};
