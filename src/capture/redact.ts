/**
 * Secret stripping for support bundles: text in, text out, with the number of values replaced.
 * What counts as a secret, and why each rule exists:
 * - Proxmox VM configs: `cipassword` (cloud-init password hash), `sshkeys` (who may log in), any key naming
 *   a password/secret/token, any `password=`-like option inside a property string or in `args:` (raw QEMU
 *   options), and the `#` comment lines, which hold the VM's free-text notes.
 * - libvirt domain XML: `passwd=` on `<graphics>` and any attribute naming a password/secret/token;
 *   `<qemu:arg>` values are QEMU options; `<qemu:env>` values are environment variables.
 * - QEMU command lines: `password=`, `password-secret=`-style options and the `data=` of `-object secret`.
 */

export const redacted = '<redacted>';

export interface Redacted {
  text: string;
  count: number;
}

const secretName = /pass(word|wd|phrase)?|secret|token/i;
/** Values that only switch a feature on (`-vnc :0,password=on`) give nothing away. */
const switchValue = /^(on|off|true|false|yes|no)$/i;

/** `key=value,key=value` option strings (QEMU options, Proxmox property strings). */
export function redactOptionString(options: string): Redacted {
  let count = 0;
  const isSecretObject = /^secret(,|$)|(^|,)qom-type=secret(,|$)/.test(options);
  const text = options.replace(/(^|,)([\w.-]+)=([^,]*)/g, (whole, lead: string, key: string, value: string) => {
    const secret = secretName.test(key) || (isSecretObject && key === 'data');
    if (!secret || switchValue.test(value) || value === redacted) return whole;
    count++;
    return `${lead}${key}=${redacted}`;
  });
  return { text, count };
}

/** QEMU's JSON option form, `-object '{"qom-type":"secret","id":"s0","data":"..."}'`. */
function redactJsonOptions(argument: string): Redacted {
  let count = 0;
  const isSecretObject = /"qom-type"\s*:\s*"secret"/.test(argument);
  const text = argument.replace(/"([\w.-]+)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g, (whole, key: string, colon: string, value: string) => {
    if (!(secretName.test(key) || (isSecretObject && key === 'data')) || switchValue.test(value)) return whole;
    count++;
    return `"${key}"${colon}"${redacted}"`;
  });
  return { text, count };
}

const redactArgument = (argument: string): Redacted => (argument.trimStart().startsWith('{') ? redactJsonOptions(argument) : redactOptionString(argument));

function redactEach(parts: string[], separator: string): Redacted {
  let count = 0;
  const text = parts
    .map((argument) => {
      const result = redactArgument(argument);
      count += result.count;
      return result.text;
    })
    .join(separator);
  return { text, count };
}

/** `/proc/<pid>/cmdline`: NUL-separated arguments. */
export const redactCmdline = (cmdline: string): Redacted => redactEach(cmdline.split('\0'), '\0');

const redactWords = (words: string): Redacted => redactEach(words.split(' '), ' ');

/** A Proxmox VM config (`/etc/pve/qemu-server/<vmid>.conf`, every section) or mapping file. */
export function redactPveConfig(config: string): Redacted {
  let count = 0;
  const lines = config.split('\n').map((line) => {
    if (/^\s*#/.test(line)) {
      count++;
      return `#${redacted}`;
    }
    const match = /^(\s*)([\w-]+)(\s*:\s*)(.*)$/.exec(line);
    if (!match) return line;
    const [, indent, key, separator, value] = match as unknown as [string, string, string, string, string];
    if (/^(cipassword|sshkeys)$/.test(key) || secretName.test(key)) {
      count++;
      return `${indent}${key}${separator}${redacted}`;
    }
    // `args:` holds raw QEMU options, separated by spaces.
    const options = key === 'args' ? redactWords(value) : redactOptionString(value);
    count += options.count;
    return `${indent}${key}${separator}${options.text}`;
  });
  return { text: lines.join('\n'), count };
}

/** A libvirt domain or status XML file. */
export function redactLibvirtXml(xml: string): Redacted {
  let count = 0;
  let text = xml.replace(/(\s)([\w:-]+)(\s*=\s*)(['"])(.*?)\4/g, (whole, space: string, name: string, equals: string, quote: string) => {
    if (!secretName.test(name)) return whole;
    count++;
    return `${space}${name}${equals}${quote}${redacted}${quote}`;
  });
  text = text.replace(/(<qemu:(arg|env)\b[^>]*\svalue\s*=\s*)(['"])(.*?)\3/g, (whole, head: string, element: string, quote: string, value: string) => {
    if (element === 'env') {
      count++;
      return `${head}${quote}${redacted}${quote}`;
    }
    const result = redactArgument(value);
    count += result.count;
    return `${head}${quote}${result.text}${quote}`;
  });
  return { text, count };
}
