#!/bin/sh
# The lab host's init: a real passthrough host (kernel with an emulated Intel IOMMU) that plays the seed
# incident. It takes its settings from /out/lab.env (written by the test), reports through /out:
#   progress      one line per step, with the lab's uptime
#   phase-<name>  written when a step is done: exporter (ready), disk (the controller's disk mounted on the host),
#                 disk-released (unmounted, the controller on vfio-pci), a (before anything starts),
#                 b (VM 102 running), c (101 killed)
#   failed        why the lab gave up (then it powers off)
# and waits for the test's release-disk, go-101 and stop files. Every wait has a deadline.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in /modules/*.ko; do insmod "$module" || echo "lab: insmod $module failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /out || { echo "lab: FAILED: no /out"; poweroff -f; }

uptime_s() { cut -d' ' -f1 /proc/uptime; }
log() { echo "lab: $(uptime_s) $*"; echo "$(uptime_s) $*" >>/out/progress; }
fail() { log "FAILED: $*"; echo "$*" >/out/failed; sync; poweroff -f; }
phase() { uptime_s >"/out/.phase-$1" && mv "/out/.phase-$1" "/out/phase-$1"; log "phase $1"; }
# waits until `$2` succeeds, at most $1 seconds
wait_until() { limit=$(($1 * 5)); shift; while ! "$@"; do limit=$((limit - 1)); [ "$limit" -gt 0 ] || return 1; usleep 200000; done; }

[ -r /out/lab.env ] || fail "no /out/lab.env"
. /out/lab.env
: "${OUT:?}" "${EXPORTER:?}" "${GUARD:?}" "${SATA:?}" "${BEHIND_PORT:?}"
log "kernel $(uname -r) up, $(grep -c . /proc/modules) modules"

# The outer machine's root, read-only, for QEMU, lspci and the exporter; proc, sys, dev are this kernel's.
# Read-only and unchanging while the lab runs, so the guest may cache it (Node and QEMU start faster).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host || fail "no 9p root"
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "no cgroup2"
mount -t proc proc /host/proc
mount -o rbind /sys /host/sys
mount -o rbind /dev /host/dev
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=0755 tmpfs /host/run
mkdir -p "/host$OUT" && mount -o bind /out "/host$OUT"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose bin "/host$OUT/bin" || fail "no 9p bin"
in_host() { chroot /host "$@"; }

ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || fail "no network"

# Proxmox's layout under --path.rootfs=/tmp/pve: /etc/pve/qemu-server links to this node's directory, and
# /run is the real /run, where the VMs' pid files and QMP sockets are.
pve=/host/tmp/pve
mkdir -p "$pve/etc/pve/nodes/lab/qemu-server" "$pve/run" /host/run/qemu-server
ln -s nodes/lab "$pve/etc/pve/local"
ln -s nodes/lab/qemu-server "$pve/etc/pve/qemu-server"
echo lab >"$pve/etc/hostname"
# The running kernel's modules.alias, where the boot_binding collector looks for it under the rootfs.
mkdir -p "$pve/lib" && ln -s /lib/modules "$pve/lib/modules"
mount -o bind /host/run "$pve/run"
# 101: the seed's mistake at the lab's scale: more memory than the host can pin, ballooning on.
cat >"$pve/etc/pve/qemu-server/101.conf" <<CONF
balloon: 1024
boot: order=sata0
cores: 1
hookscript: local:snippets/vfio-guard.sh
hostpci0: $SATA
memory: 1920
name: nas
onboot: 0
ostype: l26
CONF
# 102: small, ballooning off, the same controller, started on boot: nothing reserves the controller for
# vfio-pci at boot, so ahci takes it first, as on the seed host.
cat >"$pve/etc/pve/qemu-server/102.conf" <<CONF
balloon: 0
cores: 1
hostpci0: $SATA
memory: 512
name: small
onboot: 1
ostype: l26
CONF

# Proxmox binds a hostpci device to vfio-pci before the start (taking it from its host driver first).
bind_vfio() {
  echo vfio-pci >"/sys/bus/pci/devices/$1/driver_override"
  [ ! -e "/sys/bus/pci/devices/$1/driver" ] || echo "$1" >"/sys/bus/pci/devices/$1/driver/unbind"
  echo "$1" >/sys/bus/pci/drivers_probe
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$1/driver")")" = vfio-pci ] || fail "$1 not bound to vfio-pci"
  group=$(basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")")
  [ -c "/dev/vfio/$group" ] || fail "no /dev/vfio/$group"
  log "$1 on vfio-pci, IOMMU group $group"
}
bind_vfio "$BEHIND_PORT"

# The controller VMs 101 and 102 are given starts on ahci, as on a host without vfio-pci ids= in its
# initramfs, and the host mounts a filesystem from the disk behind it.
# The whole disk behind a PCI device, found by where its sysfs node lives.
disk_behind() {
  for block in /sys/class/block/*; do
    [ ! -e "$block/partition" ] || continue
    case "$(readlink -f "$block")" in */"$1"/*) echo "${block##*/}" && return 0 ;; esac
  done
  return 1
}
wait_until 60 disk_behind "$SATA" >/dev/null || fail "no disk behind $SATA on $(basename "$(readlink "/sys/bus/pci/devices/$SATA/driver")")"
disk=$(disk_behind "$SATA")
wait_until 10 test -b "/dev/${disk}1" || fail "no partition on /dev/$disk"
for block in "$disk" "${disk}1"; do readlink -f "/sys/class/block/$block"; done >/out/disk-sysfs.txt
mke2fs -L nas "/dev/${disk}1" >/out/mke2fs.txt 2>&1 || fail "mke2fs /dev/${disk}1: $(cat /out/mke2fs.txt)"
mkdir -p /mnt/nas
mount -t ext2 "/dev/${disk}1" /mnt/nas || fail "cannot mount /dev/${disk}1"
log "/dev/${disk}1 behind $SATA mounted on /mnt/nas"

# Generous collector deadlines: Node under TCG on a loaded machine is slow, the first sample slowest.
exporter_flags="--path.rootfs=/tmp/pve --no-collector.host --sample.timeout=30s"
check() { # vmid [output name]
  in_host "$EXPORTER" check --vmid "$1" $exporter_flags --log.level=warn >"/out/check-${2:-$1}.txt" 2>&1
  echo $? >"/out/check-${2:-$1}.rc"
}
guard() {
  VFIO_EXPORTER="$EXPORTER" VFIO_GUARD_ARGS="$exporter_flags" in_host /bin/sh "$GUARD" 101 pre-start >/out/guard-101.txt 2>&1
  echo $? >/out/guard-101.rc
}
# check while the host holds the disk: it lists the disk behind the controller and refuses the VM.
check 102 disk &
disk_check=$!
# The exporter as systemd runs it (Restart=): a new start after any exit; it may be the OOM killer's second victim.
echo -1000 >/proc/self/oom_score_adj
(
  starts=0
  while [ ! -e /out/stop ]; do
    starts=$((starts + 1))
    echo "$(uptime_s) start $starts" >>/out/exporter-starts
    sh -c "echo 0 >/proc/self/oom_score_adj; exec chroot /host $EXPORTER $exporter_flags --state.file=/run/vfio-exporter/state.json --log.level=info --web.listen-address=:9847 --sample.interval=5s --qmp.timeout=3s" >>/out/exporter.log 2>&1
    echo "$(uptime_s) exit $? after start $starts" >>/out/exporter-starts
    sleep 1
  done
) &
wait_until 300 wget -q -O /dev/null http://127.0.0.1:9847/-/ready || fail "exporter not ready in 300 s"
phase exporter
wait "$disk_check"
phase disk

wait_until 600 test -e /out/release-disk || fail "no release-disk from the test in 600 s"
umount /mnt/nas || fail "cannot unmount /mnt/nas"
# The kernel's uevent count around the rebind: the exporter reads driver links again only once it moved.
seqnum_before=$(cat /sys/kernel/uevent_seqnum)
bind_vfio "$SATA"
echo "$seqnum_before $(cat /sys/kernel/uevent_seqnum)" >/out/uevent-seqnum.txt
disk_behind "$SATA" >/dev/null && fail "/dev/$disk still there with $SATA on vfio-pci"
phase disk-released

in_host lspci -Dnnk >/out/lspci.txt 2>&1
# The kernel's reset methods (a line when the file exists, empty when the device has none) and AER counters.
for device in /sys/bus/pci/devices/*; do
  address=${device##*/}
  [ ! -e "$device/reset_method" ] || echo "$address reset_method $(cat "$device/reset_method")"
  for file in "$device"/aer_dev_correctable "$device"/aer_dev_nonfatal "$device"/aer_dev_fatal; do
    [ ! -e "$file" ] || sed "s|^|$address ${file##*/} |" "$file"
  done
done >/out/pci-health.txt
for link in /sys/kernel/iommu_groups/*/devices/*; do
  g=${link#/sys/kernel/iommu_groups/}
  echo "${g%%/*} ${link##*/}"
done >/out/iommu-groups.txt

# The kernel's own word on the group that holds a root port on pcieport: QEMU opens it (or says "not viable").
in_host qemu-system-x86_64 -accel tcg -m 64 -nodefaults -display none -S -daemonize -pidfile /run/viability.pid \
  -device "vfio-pci,host=$BEHIND_PORT" >/out/viability.txt 2>&1
echo $? >/out/viability.rc
if [ -s /host/run/viability.pid ]; then
  probe=$(cat /host/run/viability.pid)
  kill "$probe"
  wait_until 30 test ! -d "/proc/$probe" || fail "the viability probe does not stop"
fi

# (a) before anything starts: check and the hookscript, as Proxmox would call it.
# (the exporter runs in the background too: wait for these three alone)
check 101 &
checks=$!
check 102 &
checks="$checks $!"
guard &
wait $checks $!
log "checks done"
phase a

# Prepared as qemu-server's start does: its own scope under qemu.slice, -pidfile, QMP socket, -daemonize.
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/qemu.slice
echo +memory >/sys/fs/cgroup/qemu.slice/cgroup.subtree_control
start_vm() { # vmid name MiB extra-args...
  vmid=$1 name=$2 mib=$3
  shift 3
  mkdir -p "/sys/fs/cgroup/qemu.slice/$vmid.scope"
  sh -c "echo \$\$ >/sys/fs/cgroup/qemu.slice/$vmid.scope/cgroup.procs; echo 0 >/proc/self/oom_score_adj; exec chroot /host qemu-system-x86_64 \
    -chardev socket,id=qmp,path=/var/run/qemu-server/$vmid.qmp,server=on,wait=off -mon chardev=qmp,mode=control \
    -pidfile /var/run/qemu-server/$vmid.pid -daemonize -name $name,debug-threads=on \
    -accel tcg,tb-size=32 -smp 1 -m $mib -nodefaults -display none \
    -device vfio-pci,host=$SATA,id=hostpci0 $*" >"/out/qemu-$vmid.log" 2>&1
}
start_vm 102 small 512 || fail "VM 102 did not start: $(cat /out/qemu-102.log)"
pid102=$(cat /host/run/qemu-server/102.pid)
[ -S /host/run/qemu-server/102.qmp ] || fail "VM 102 has no QMP socket"
log "VM 102 running, pid $pid102"
# What /proc and the cgroup say, every second, for the test to hold the exporter's figures against.
(
  while [ -d "/proc/$pid102" ]; do
    { grep -E '^(VmRSS|VmLck|VmPin):' "/proc/$pid102/status"; echo "memory.current: $(cat /sys/fs/cgroup/qemu.slice/102.scope/memory.current)"; echo "uptime: $(uptime_s)"; } >/out/vm-102.tmp 2>/dev/null
    mv /out/vm-102.tmp /out/vm-102.txt
    sleep 1
  done
) &
phase b

wait_until 900 test -e /out/go-101 || fail "no go-101 from the test in 900 s"
kill -TERM "$pid102"
wait_until 30 test ! -d "/proc/$pid102" || { kill -KILL "$pid102"; wait_until 10 test ! -d "/proc/$pid102" || fail "VM 102 does not stop"; }
log "VM 102 stopped"

# 101 started anyway: VFIO pins all 1920 MiB at start and the kernel OOM-kills it (overcommit lets the
# allocation through to the page faults, as on the seed host).
echo 1 >/proc/sys/vm/overcommit_memory
kills_before=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
start_vm 101 nas 1920 -device virtio-balloon-pci,id=balloon0
echo $? >/out/qemu-101.rc
wait_until 120 sh -c "[ \$(awk '\$1 == \"oom_kill\" { print \$2 }' /proc/vmstat) -gt $kills_before ]" || fail "VM 101 was not OOM-killed"
dmesg | grep -E 'oom-kill:|Out of memory|oom_reaper' >/out/oom-lines.txt
grep '^btime ' /proc/stat >/out/btime
# The ring as /dev/kmsg gives it (records, continuation lines), for the test's record of the real lines.
timeout 5 cat /dev/kmsg >/out/kmsg.txt
phase c

wait_until 900 test -e /out/stop || log "no stop from the test in 900 s"
log "powering off"
sync
poweroff -f
