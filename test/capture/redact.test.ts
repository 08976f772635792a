import { describe, expect, it } from 'vitest';
import { redactCmdline, redactLibvirtXml, redactPveConfig, redactPveMapping } from '../../src/capture/redact.js';
import { parseLibvirtDomain, parseLibvirtStatus } from '../../src/parse/libvirt-domain.js';
import { parsePveConfig } from '../../src/parse/pve-config.js';
import { parsePciMappingConfig } from '../../src/parse/pve-pci-mapping.js';
import { parseQemuCmdline } from '../../src/parse/qemu-cmdline.js';

/** Every secret below holds this; none may survive. */
const canary = 'CANARY';

describe('secret stripping', () => {
  it('keeps only the QEMU options the collectors read, whatever form a secret takes', () => {
    const argv = [
      '/usr/bin/kvm', '-id', '101', '-name', 'win,debug-threads=on', '-pidfile', '/var/run/qemu-server/101.pid', '-m', '16384', '-smp', '8,sockets=1,cores=8',
      '-append', `console=ttyS0 password=${canary}1`,
      '-drive', `file=nbd://u:${canary}2@nbd.example:10809/export,if=none,id=d0`,
      '-blockdev', `{"driver":"https","url":"https://u:${canary}3@files.example/disk.img","node-name":"n0"}`,
      '-drive', `file=rbd:pool/vm-101-disk-0:id=admin:key=${canary}4:auth_supported=cephx,if=none`,
      '-smbios', `type=11,value=io.systemd.credential:passwd.plaintext-password.root=${canary}5`,
      '-fw_cfg', `name=opt/com.example/token,string=${canary}6`,
      '-object', `secret,id=sec0,data=${canary}7,format=raw`,
      '-object', `{"qom-type":"secret","id":"sec1","data":"${canary}8"}`,
      '-object', 'memory-backend-file,id=ram-node0,size=16G,mem-path=/dev/hugepages,share=on,prealloc=on',
      '-device', 'vfio-pci,host=0000:01:00.0,id=hostpci0,bus=ich9-pcie-port-1,addr=0x0,multifunction=on',
      '-device', '{"driver":"vfio-pci","host":"0000:02:00.0","id":"hostdev0","bus":"pci.3","addr":"0x0","romfile":"/x.rom"}',
      '-device', 'vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:03:00.0,id=hostpci1',
      '-device', 'virtio-balloon-pci,id=balloon0,bus=pci.0,addr=0x3,free-page-reporting=on',
      '-vnc', `unix:/var/run/qemu-server/101.vnc,password-secret=sec0`,
      '-enable-kvm', '-nodefaults',
      '',
    ];
    const cmdline = argv.join('\0');
    const { text, count } = redactCmdline(cmdline);
    expect(text).not.toContain(canary);
    expect(parseQemuCmdline(text)).toEqual(parseQemuCmdline(cmdline));
    expect(text.split('\0')).toEqual([
      '/usr/bin/kvm', '-id', '101', '-name', 'win,debug-threads=on', '-pidfile', '/var/run/qemu-server/101.pid', '-m', '16384', '-smp', '8,sockets=1,cores=8',
      '-append', '<redacted>',
      '-drive', 'file=<redacted>,if=<redacted>,id=<redacted>',
      '-blockdev', '{"driver":"<redacted>","url":"<redacted>","node-name":"<redacted>"}',
      '-drive', 'file=<redacted>,if=<redacted>',
      '-smbios', 'type=<redacted>,value=<redacted>',
      '-fw_cfg', 'name=<redacted>,string=<redacted>',
      '-object', 'secret,id=sec0,data=<redacted>,format=<redacted>',
      '-object', '{"qom-type":"secret","id":"sec1","data":"<redacted>"}',
      '-object', 'memory-backend-file,id=ram-node0,size=16G,mem-path=<redacted>,share=on,prealloc=on',
      '-device', 'vfio-pci,host=0000:01:00.0,id=hostpci0,bus=ich9-pcie-port-1,addr=0x0,multifunction=on',
      '-device', '{"driver":"vfio-pci","host":"0000:02:00.0","id":"hostdev0","bus":"pci.3","addr":"0x0","romfile":"<redacted>"}',
      '-device', 'vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:03:00.0,id=hostpci1',
      '-device', 'virtio-balloon-pci,id=balloon0,bus=pci.0,addr=0x3,free-page-reporting=on',
      '-vnc', '<redacted>,password-secret=<redacted>',
      '-enable-kvm', '-nodefaults',
      '',
    ]);
    expect(count).toBe(20);
    // `,,` is a literal comma inside a value, not a separator.
    expect(redactCmdline(['kvm', '-device', 'vfio-pci,host=0000:01:00.0,romfile=/a,,b.rom', ''].join('\0')).text).toBe(['kvm', '-device', 'vfio-pci,host=0000:01:00.0,romfile=<redacted>', ''].join('\0'));
  });

  it('keeps only the Proxmox keys the collectors read and describe the machine', () => {
    const config = [
      `#Admin password is ${canary}1`,
      'balloon: 0',
      `cipassword: $5$abc$${canary}2`,
      `sshkeys: ssh-rsa%20${canary}3`,
      'hostpci0: 0000:00:17.0,pcie=1',
      'hostpci1: mapping=gpu,x-vga=1',
      'memory: 16384',
      `args: -drive file=rbd:pool/img:id=admin:key=${canary}4 -fw_cfg name=opt/x,string=${canary}5 -append "root=/dev/sda password=${canary}6"`,
      `net0: virtio=BC:24:11:00:00:01,bridge=vmbr0`,
      `scsi0: ceph:vm-101-disk-0,size=32G`,
      `smbios1: uuid=0b7a3e52,serial=${canary}7,base64=1`,
      `spice_token: ${canary}8`,
      'name: win11',
      'onboot: 1',
      'cores: 4',
      '',
      '[PENDING]',
      `cipassword: $5$def$${canary}9`,
      'memory: 12288',
      'delete: balloon',
      '',
      '[pre-update]',
      `#Before the update, ${canary}10`,
      'memory: 4096',
    ].join('\n');
    const { text, count } = redactPveConfig(config);
    expect(text).not.toContain(canary);
    expect(parsePveConfig(text)).toEqual(parsePveConfig(config));
    expect(text).toBe(
      [
        '#<redacted>', 'balloon: 0', 'cipassword: <redacted>', 'sshkeys: <redacted>', 'hostpci0: 0000:00:17.0,pcie=1', 'hostpci1: mapping=gpu,x-vga=1',
        'memory: 16384', 'args: <redacted>', 'net0: <redacted>', 'scsi0: <redacted>', 'smbios1: <redacted>', 'spice_token: <redacted>', 'name: win11', 'onboot: 1', 'cores: 4',
        '', '[PENDING]', 'cipassword: <redacted>', 'memory: 12288', 'delete: balloon', '', '[pre-update]', '#<redacted>', 'memory: 4096',
      ].join('\n'),
    );
    expect(count).toBe(10);
  });

  it('keeps the PCI mappings of a mapping file, not its descriptions', () => {
    const mapping = `gpu\n\tdescription ${canary}1\n\tmap id=10de:2204,iommugroup=1,node=pve1,path=0000:01:00,subsystem-id=1458:403b,comment=${canary}2\n\tmap id=10de:2204,node=pve2,path=0000:0b:00\n`;
    const { text } = redactPveMapping(mapping);
    expect(text).not.toContain(canary);
    expect(parsePciMappingConfig(text)).toEqual(parsePciMappingConfig(mapping));
    expect(text).toBe('gpu\n\tdescription <redacted>\n\tmap id=10de:2204,iommugroup=1,node=pve1,path=0000:01:00,subsystem-id=1458:403b,comment=<redacted>\n\tmap id=10de:2204,node=pve2,path=0000:0b:00\n');
  });

  it('keeps only the libvirt elements and attributes the collectors read', () => {
    const domain = `<domain type='kvm' id='1' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <!-- ${canary}1: a note someone left -->
  <name>win10</name>
  <title>${canary}2</title>
  <description>${canary}3 <![CDATA[${canary}4]]></description>
  <metadata><app:owner xmlns:app="http://example.com/app">${canary}5</app:owner></metadata>
  <memory unit='KiB'>16777216</memory>
  <currentMemory unit='KiB'>8388608</currentMemory>
  <memoryBacking><hugepages><page size='1048576' unit='KiB'/></hugepages></memoryBacking>
  <sysinfo type='smbios'><oemStrings><entry>${canary}6</entry></oemStrings></sysinfo>
  <launchSecurity type='s390-pv'><cookie>${canary}7</cookie></launchSecurity>
  <devices>
    <disk type='network' device='disk'>
      <source protocol='https' name='/disk.img'><host name='u:${canary}8@files.example'/></source>
      <auth username='admin'><secret type='ceph' uuid='${canary}9'/></auth>
    </disk>
    <graphics type='vnc' port='-1' passwd='${canary}10'/>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>
    </hostdev>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source><address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x1'/></source>
    </interface>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-fw_cfg'/><qemu:arg value='name=opt/x,string=${canary}11'/>
    <qemu:env name='TOKEN' value='${canary}12'/>
  </qemu:commandline>
</domain>
`;
    const { text } = redactLibvirtXml(domain);
    expect(text).not.toContain(canary);
    expect(parseLibvirtDomain(text)).toEqual(parseLibvirtDomain(domain));
    expect(text).toContain(`<!--<redacted>-->`);
    expect(text).toContain(`<title>&lt;redacted&gt;</title>`);
    expect(text).toContain(`<graphics type='&lt;redacted&gt;' port='&lt;redacted&gt;' passwd='&lt;redacted&gt;'/>`);
    expect(text).toContain(`<qemu:arg value='&lt;redacted&gt;'/>`);
    expect(text).toContain(`<hostdev mode='subsystem' type='pci' managed='yes'>`);

    const status = `<domstatus state='running' reason='booted' pid='2841'>\n  <monitor path='/var/lib/libvirt/qemu/domain-1/monitor.sock' type='unix'/>\n${domain}</domstatus>\n`;
    const cleanedStatus = redactLibvirtXml(status).text;
    expect(cleanedStatus).not.toContain(canary);
    expect(parseLibvirtStatus(cleanedStatus)).toEqual(parseLibvirtStatus(status));
  });
});
