#!/usr/bin/env bash
# Debian packages the test suite runs for real: promtool/Prometheus, Alertmanager, QEMU, lspci and pci.ids, Chromium;
# openssl (test certificates), systemd-analyze, strip (single executable), lintian (the .deb) and python3-fusepy (a mount
# whose reads hang); a kernel, static busybox, cpio and kmod (modinfo, for module dependencies) for the passthrough lab
# host (test/lab/).
set -euo pipefail
packages=(prometheus prometheus-alertmanager qemu-system-x86 pciutils pci.ids chromium fonts-dejavu-core openssl systemd binutils lintian
  python3-fusepy linux-image-amd64 busybox-static cpio kmod)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
