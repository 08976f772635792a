import { describe, expect, it } from 'vitest';
import { redactCmdline, redactLibvirtXml, redactOptionString, redactPveConfig } from '../../src/capture/redact.js';

describe('secret stripping', () => {
  it('strips Proxmox passwords, keys, notes and secret options, keeping the rest', () => {
    const config = [
      '#Admin password is hunter2',
      'balloon: 0',
      'cipassword: $5$abc$hashhash',
      'sshkeys: ssh-rsa%20AAAAB3Nza',
      'hostpci0: 0000:00:17.0,pcie=1',
      'memory: 16384',
      'args: -object secret,id=sec0,data=hunter2 -vnc 0.0.0.0:1,password=on',
      'net0: virtio=BC:24:11:00:00:01,bridge=vmbr0',
      'spice_token: abc',
      '',
      '[PENDING]',
      'cipassword: $5$def$hash',
      'memory: 12288',
    ].join('\n');
    const { text, count } = redactPveConfig(config);
    expect(text).not.toMatch(/hunter2|hashhash|AAAAB3Nza|\$5\$def|spice_token: abc/);
    expect(text).toContain('#<redacted>\nballoon: 0\ncipassword: <redacted>\nsshkeys: <redacted>\nhostpci0: 0000:00:17.0,pcie=1\nmemory: 16384\n');
    expect(text).toContain('args: -object secret,id=sec0,data=<redacted> -vnc 0.0.0.0:1,password=on');
    expect(text).toContain('[PENDING]\ncipassword: <redacted>\nmemory: 12288');
    expect(count).toBe(6);
  });

  it('strips libvirt graphics passwords and qemu:commandline secrets', () => {
    const xml = `<domain type='kvm'>
  <memory unit='KiB'>16777216</memory>
  <devices><graphics type='spice' port='5900' passwd="hunter2" passwdValidTo='2030-01-01T00:00:00'/>
  <graphics type='vnc' port='-1' autoport='yes' passwd='vncpass'/></devices>
  <qemu:commandline><qemu:arg value='-object'/><qemu:arg value='secret,id=s0,data=hunter2'/><qemu:env name='TOKEN' value='abc123'/></qemu:commandline>
</domain>`;
    const { text, count } = redactLibvirtXml(xml);
    expect(text).not.toMatch(/hunter2|vncpass|abc123/);
    expect(text).toContain(`<memory unit='KiB'>16777216</memory>`);
    expect(text).toContain(`<graphics type='spice' port='5900' passwd="<redacted>"`);
    expect(text).toContain(`<qemu:arg value='secret,id=s0,data=<redacted>'/>`);
    expect(count).toBe(5);
  });

  it('strips QEMU command-line secrets in both option syntaxes', () => {
    const cmdline = ['/usr/bin/kvm', '-id', '101', '-object', 'secret,id=sec0,data=hunter2,format=raw', '-object', '{"qom-type":"secret","id":"s1","data":"hunter3"}',
      '-spice', 'port=61000,addr=127.0.0.1,password-secret=sec0', '-m', '16384', ''].join('\0');
    const { text, count } = redactCmdline(cmdline);
    expect(text.split('\0')).toEqual(['/usr/bin/kvm', '-id', '101', '-object', 'secret,id=sec0,data=<redacted>,format=raw', '-object', '{"qom-type":"secret","id":"s1","data":"<redacted>"}',
      '-spice', 'port=61000,addr=127.0.0.1,password-secret=<redacted>', '-m', '16384', '']);
    expect(count).toBe(3);
    // `data=` is only a secret in a secret object.
    expect(redactOptionString('memory-backend-file,id=m,data=keep').count).toBe(0);
  });
});
