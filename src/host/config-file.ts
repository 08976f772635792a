import { readText } from './fs.js';

/** A VM config (Proxmox conf, libvirt domain XML) is a few KiB; anything this large is not one. */
export const maxConfigFileBytes = 1024 * 1024;

/** Reads a config file as text, refusing binary content (a NUL byte) as well as oversized files. */
export async function readConfigText(file: string, limit = maxConfigFileBytes): Promise<string> {
  const text = await readText(file, limit);
  if (text.includes('\0')) throw new Error(`${file}: binary content, not a text config`);
  return text;
}
