const multipliers: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tib: 1024 ** 4 };

/** `1GiB`, `512MiB`, `2G`, `1073741824` → bytes (binary units, as Proxmox and QEMU use). */
export function parseByteSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const multiplier = match ? multipliers[match[2]!.toLowerCase()] : undefined;
  if (!match || multiplier === undefined) throw new Error(`not a size: ${JSON.stringify(text)} (use e.g. 1GiB, 512MiB)`);
  return Math.round(Number(match[1]) * multiplier);
}
