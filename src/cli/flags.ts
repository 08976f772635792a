import { allCollectors } from '../collectors/index.js';
import type { CollectorName } from '../collectors/types.js';
import { errorMessage } from '../host/fs.js';
import type { HostPaths } from '../host/paths.js';
import { logFormats, logLevels, type LogFormat, type LogLevel } from '../log.js';
import { parseByteSize } from '../parse/bytes.js';
import { parseDuration } from '../parse/duration.js';

export const commands = ['serve', 'check', 'capture', 'mixin'] as const;
export type Command = (typeof commands)[number];

export interface ListenAddress {
  /** Empty for every interface, as Go's `:9847`. */
  host: string;
  port: number;
}

export interface Config {
  command: Command;
  /** Positional arguments after the command (e.g. the output file of `capture`). */
  args: string[];
  listen: ListenAddress;
  telemetryPath: string;
  webConfigFile: string | undefined;
  paths: HostPaths;
  /** `serve`: the kernel log counts of this boot, kept across restarts; undefined keeps nothing. */
  stateFile: string | undefined;
  collectors: Set<CollectorName>;
  sampleIntervalSeconds: number;
  collectorTimeoutSeconds: number;
  qmpTimeoutSeconds: number;
  /** Memory kept back for the host when judging whether a VM fits; the recording rules use the same default. */
  hostReserveBytes: number;
  /** --memory.host-reserve was given (flag or environment): the exporter exports it, and the rules judge this host with it. */
  hostReserveGiven: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** `check`: judge one VM's start. */
  checkVmid: string | undefined;
  /** `check`: machine-readable output. */
  checkJson: boolean;
  /** `mixin`: the settings file of the generated rules and dashboards; undefined keeps the defaults. */
  mixinConfigFile: string | undefined;
  /** `mixin`: where the rules and dashboards are written. */
  mixinOutDir: string | undefined;
}

interface FlagSpec {
  name: string;
  help: string;
  /** Undefined: a boolean flag. */
  defaultValue: string | undefined;
  placeholder?: string;
}

/** The one table of value flags; `--help` and the README are written from it. */
export const valueFlags: readonly FlagSpec[] = [
  { name: 'web.listen-address', help: 'Address to listen on for the web interface and telemetry.', defaultValue: ':9847', placeholder: 'host:port' },
  { name: 'web.telemetry-path', help: 'Path under which to expose metrics.', defaultValue: '/metrics', placeholder: 'path' },
  { name: 'web.config.file', help: 'Exporter-toolkit web config file (TLS, basic auth).', defaultValue: '', placeholder: 'file' },
  { name: 'path.sysfs', help: 'sysfs mountpoint.', defaultValue: '/sys', placeholder: 'dir' },
  { name: 'path.procfs', help: 'procfs mountpoint.', defaultValue: '/proc', placeholder: 'dir' },
  { name: 'path.rootfs', help: 'Root of the host filesystem, for /etc/pve, /etc/libvirt and /run.', defaultValue: '/', placeholder: 'dir' },
  { name: 'path.kmsg', help: 'Kernel log device (or a saved dump of it).', defaultValue: '/dev/kmsg', placeholder: 'file' },
  { name: 'path.pci-ids', help: 'pci.ids file (default: search usr/share/misc and usr/share/hwdata under rootfs, then /).', defaultValue: '', placeholder: 'file' },
  { name: 'state.file', help: 'Where the kernel log counts (OOM kills) are kept across restarts; empty keeps nothing.', defaultValue: '/var/lib/vfio-exporter/state.json', placeholder: 'file' },
  { name: 'sample.interval', help: 'Interval between samples; must divide a minute or an hour.', defaultValue: '15s', placeholder: 'duration' },
  { name: 'sample.timeout', help: 'A collector that takes longer fails that sample; the others are not held up.', defaultValue: '10s', placeholder: 'duration' },
  { name: 'qmp.timeout', help: 'Hard deadline for one QMP exchange with a VM.', defaultValue: '2s', placeholder: 'duration' },
  { name: 'memory.host-reserve', help: 'Memory kept back for the host when judging whether a VM can start (check, status page). When set, the exporter exports it (vfio_exporter_host_reserve_bytes) and the rules judge this host with it; unset, both use 1GiB, the rules their vfio:config_host_reserve_bytes.', defaultValue: '1GiB', placeholder: 'size' },
  { name: 'log.level', help: `Only log messages with the given severity or above: ${logLevels.join(', ')}.`, defaultValue: 'info', placeholder: 'level' },
  { name: 'log.format', help: `Output format of log messages: ${logFormats.join(', ')}.`, defaultValue: 'logfmt', placeholder: 'format' },
  { name: 'config', help: 'mixin: settings file (YAML) of the generated rules and dashboards: job selector, fleet labels, thresholds, runbook URL.', defaultValue: '', placeholder: 'file' },
  { name: 'out', help: 'mixin: directory to write alerts/vfio.rules.yml and grafana/*.json into (required).', defaultValue: '', placeholder: 'dir' },
  { name: 'vmid', help: 'check: judge whether this VM can start (exit 0 fits, 1 would fail, 2 could not judge).', defaultValue: '', placeholder: 'id' },
];

const checkFlags = ['json'] as const;

/** `--web.listen-address` → `VFIO_EXPORTER_WEB_LISTEN_ADDRESS`. */
export const envName = (flag: string): string => 'VFIO_EXPORTER_' + flag.toUpperCase().replace(/[.-]/g, '_');

export class UsageError extends Error {}

export function parseListenAddress(text: string): ListenAddress {
  const match = /^(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new UsageError(`--web.listen-address: expected [host]:port, got ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

const parseBoolean = (flag: string, text: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new UsageError(`${envName(flag)}: expected true or false, got ${JSON.stringify(text)}`);
};

const oneOf = <T extends string>(flag: string, value: string, allowed: readonly T[]): T => {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
};

/** Runs a value parser, turning its error into a UsageError that names the flag. */
const parsedFlag = <T>(flag: string, value: string, parse: (text: string) => T): T => {
  try {
    return parse(value);
  } catch (error) {
    throw new UsageError(`--${flag}: ${errorMessage(error)}`);
  }
};

const durationFlag = (flag: string, value: string): number =>
  parsedFlag(flag, value, (text) => {
    const seconds = parseDuration(text);
    if (seconds <= 0) throw new Error('must be positive');
    return seconds;
  });

export type ParseResult = { kind: 'config'; config: Config } | { kind: 'help'; text: string } | { kind: 'version' };

/** Flags → one typed Config. Nothing else reads process.argv or the environment. */
export function parseFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const values = new Map<string, string>();
  const booleans = new Map<string, boolean>();
  const collectorNames = new Set<string>(allCollectors.map((collector) => collector.name));
  const positional: string[] = [];

  for (const spec of valueFlags) {
    const fromEnv = env[envName(spec.name)];
    if (fromEnv !== undefined) values.set(spec.name, fromEnv);
  }
  for (const name of [...collectorNames].map((collector) => `collector.${collector}`).concat(checkFlags)) {
    const fromEnv = env[envName(name)];
    if (fromEnv !== undefined) booleans.set(name, parseBoolean(name, fromEnv));
  }

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '-h' || arg === '--help') return { kind: 'help', text: usage() };
    if (arg === '--version') return { kind: 'version' };
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [rawName, inlineValue] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const negated = rawName.startsWith('no-');
    const boolName = negated ? rawName.slice(3) : rawName;
    if ((boolName.startsWith('collector.') && collectorNames.has(boolName.slice('collector.'.length))) || (checkFlags as readonly string[]).includes(boolName)) {
      if (inlineValue !== undefined) throw new UsageError(`--${rawName} takes no value`);
      booleans.set(boolName, !negated);
      continue;
    }
    if (!valueFlags.some((spec) => spec.name === rawName)) throw new UsageError(`unknown flag --${rawName} (see --help)`);
    const value = inlineValue ?? argv[++index];
    if (value === undefined) throw new UsageError(`--${rawName} needs a value`);
    values.set(rawName, value);
  }

  const value = (name: string): string => values.get(name) ?? valueFlags.find((spec) => spec.name === name)!.defaultValue ?? '';
  const optional = (name: string): string | undefined => value(name) || undefined;
  const [commandArg = 'serve', ...args] = positional;
  const command = oneOf('command', commandArg, commands);
  const telemetryPath = value('web.telemetry-path');
  if (!telemetryPath.startsWith('/')) throw new UsageError(`--web.telemetry-path: must start with /, got ${JSON.stringify(telemetryPath)}`);

  const collectors = new Set<CollectorName>(
    allCollectors.filter((collector) => booleans.get(`collector.${collector.name}`) ?? collector.defaultEnabled).map((collector) => collector.name),
  );

  return {
    kind: 'config',
    config: {
      command,
      args,
      listen: parseListenAddress(value('web.listen-address')),
      telemetryPath,
      webConfigFile: optional('web.config.file'),
      paths: {
        sysfs: value('path.sysfs'),
        procfs: value('path.procfs'),
        rootfs: value('path.rootfs'),
        kmsg: value('path.kmsg'),
        pciIds: optional('path.pci-ids'),
      },
      stateFile: optional('state.file'),
      collectors,
      sampleIntervalSeconds: durationFlag('sample.interval', value('sample.interval')),
      collectorTimeoutSeconds: durationFlag('sample.timeout', value('sample.timeout')),
      qmpTimeoutSeconds: durationFlag('qmp.timeout', value('qmp.timeout')),
      hostReserveBytes: parsedFlag('memory.host-reserve', value('memory.host-reserve'), parseByteSize),
      hostReserveGiven: values.has('memory.host-reserve'),
      logLevel: oneOf('log.level', value('log.level'), logLevels),
      logFormat: oneOf('log.format', value('log.format'), logFormats),
      checkVmid: optional('vmid'),
      checkJson: booleans.get('json') ?? false,
      mixinConfigFile: optional('config'),
      mixinOutDir: optional('out'),
    },
  };
}

export function usage(): string {
  const lines = [
    'usage: vfio-exporter [serve|check|capture|mixin] [flags]',
    '',
    'Prometheus exporter for PCI-passthrough (VFIO) hosts. Every flag can also be set by the',
    'environment variable shown (flag name upper-cased, "." and "-" as "_", prefixed VFIO_EXPORTER_).',
    '',
    'Flags:',
    '  -h, --help                     Show this help.',
    '      --version                  Show the version.',
  ];
  for (const spec of valueFlags) {
    const left = `      --${spec.name}=<${spec.placeholder ?? 'value'}>`;
    const defaultText = spec.defaultValue ? ` (default: ${spec.defaultValue})` : '';
    lines.push(`${left.padEnd(44)} ${spec.help}${defaultText} [${envName(spec.name)}]`);
  }
  lines.push(`${'      --json'.padEnd(44)} check: print the report as JSON. [${envName('json')}]`);
  for (const collector of allCollectors) {
    const left = `      --[no-]collector.${collector.name}`;
    lines.push(`${left.padEnd(44)} Enable the ${collector.name} collector: ${collector.description} (default: ${collector.defaultEnabled ? 'enabled' : 'disabled'}) [${envName(`collector.${collector.name}`)}]`);
  }
  return lines.join('\n');
}
