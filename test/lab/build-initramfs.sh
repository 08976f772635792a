#!/bin/sh
# Builds the lab host's initramfs from Debian's linux-image-amd64 modules and busybox-static:
#   build-initramfs.sh <out-dir>  → <out-dir>/initrd.gz, <out-dir>/kernel (the vmlinuz path, one line)
# The kernel is the newest /boot/vmlinuz-<version> with its modules under /lib/modules/<version>.
set -eu
out="${1:?usage: build-initramfs.sh <out-dir>}"
here="$(cd "$(dirname "$0")" && pwd)"
version=""
for kernel in $(ls -v /boot/vmlinuz-* 2>/dev/null); do
  candidate="${kernel#/boot/vmlinuz-}"
  [ -d "/lib/modules/$candidate/kernel" ] && version="$candidate"
done
[ -n "$version" ] || { echo "no /boot/vmlinuz-<version> with /lib/modules/<version>: install linux-image-amd64" >&2; exit 1; }
busybox=/bin/busybox
[ -x "$busybox" ] && "$busybox" --list | grep -qx insmod || { echo "no static busybox: install busybox-static" >&2; exit 1; }

root="$out/initramfs"
rm -rf "$root"
mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" "$root/dev" "$root/host" "$root/out"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"; done
# virtio and 9p for the host's root, the NIC, VFIO; the second SATA controller's disk (ahci, sd_mod) and
# its filesystem (ext4, which mounts ext2; crc32c for its checksums). Each module's dependencies, as this
# kernel's modinfo names them, come before it: the set differs between kernel versions (crc64-rocksoft is 6.0+).
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p
  failover net_failover virtio_net irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci
  ahci sd_mod crc32c_generic ext4"
# modinfo (kmod, a dependency of the kernel package) is in /usr/sbin, off a user's PATH on Debian.
modinfo="$(command -v modinfo || echo /usr/sbin/modinfo)"
index=10
added=" "
add_module() {
  local module="$1" file dependencies dependency
  case "$added" in *" $module "*) return 0 ;; esac
  file="$(find "/lib/modules/$version/kernel" -name "$module.ko*" | head -n 1)"
  [ -n "$file" ] || { echo "module $module missing from /lib/modules/$version" >&2; exit 1; }
  dependencies="$("$modinfo" -F depends "$file")"
  for dependency in $(echo "$dependencies" | tr , ' '); do add_module "$dependency"; done
  added="$added$module "
  target="$root/modules/$index-$module.ko"
  case "$file" in
    *.ko) cp "$file" "$target" ;;
    *.ko.xz) xz -dc "$file" >"$target" ;;
    *.ko.zst) zstd -qdc "$file" >"$target" ;;
    *.ko.gz) gzip -dc "$file" >"$target" ;;
    *) echo "unknown module format: $file" >&2; exit 1 ;;
  esac
  index=$((index + 1))
}
for module in $modules; do add_module "$module"; done
cp "$here/init.sh" "$root/init"
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initrd.gz"
rm -rf "$root"
echo "/boot/vmlinuz-$version" >"$out/kernel"
