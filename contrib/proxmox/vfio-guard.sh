#!/bin/sh
# Proxmox VE hookscript: refuses to start a VM that the host cannot hold once VFIO pins its RAM,
# or whose passthrough devices or IOMMU group are not ready. On a host whose passthrough VMs run,
# it also judges VMs without passthrough: refused when even their balloon floor does not fit the
# headroom, started with a warning when all of their memory does not. Other phases pass.
#
# Install, on every VM of the host (any start can push a passthrough VM into the OOM killer):
#   cp vfio-guard.sh /var/lib/vz/snippets/ && chmod +x /var/lib/vz/snippets/vfio-guard.sh
#   for vmid in $(qm list | awk 'NR > 1 { print $1 }'); do qm set "$vmid" --hookscript local:snippets/vfio-guard.sh; done
#
# Settings (environment, or /etc/default/vfio-guard):
#   VFIO_EXPORTER      the vfio-exporter binary (default: vfio-exporter on PATH)
#   VFIO_GUARD_ARGS    extra flags for `vfio-exporter check` (e.g. --memory.host-reserve=2GiB)
#   VFIO_GUARD_STRICT  1: also refuse when the check cannot judge (exit 2); default lets the start go on
set -u

vmid="${1:?usage: vfio-guard.sh <vmid> <phase>}"
phase="${2:?usage: vfio-guard.sh <vmid> <phase>}"
[ "$phase" = "pre-start" ] || exit 0

[ -r /etc/default/vfio-guard ] && . /etc/default/vfio-guard
exporter="${VFIO_EXPORTER:-vfio-exporter}"

# Only the report is parsed; the check's own log lines (a slow collector, say) go straight to the task log.
# shellcheck disable=SC2086 # VFIO_GUARD_ARGS is a list of flags
report=$("$exporter" check --vmid "$vmid" --log.level=error --no-collector.host ${VFIO_GUARD_ARGS:-})
status=$?
# The verdict is the report's first paragraph after its title line.
verdict=$(printf '%s\n' "$report" | awk 'NR > 2 && /^$/ { exit } NR > 2')

case "$status" in
  0)
    case "$verdict" in
      *'WITH A WARNING'*) printf 'vfio-guard: %s\n' "$verdict" >&2 ;;
      *) printf 'vfio-guard: %s\n' "$verdict" ;;
    esac
    exit 0
    ;;
  1)
    printf 'vfio-guard: refusing to start VM %s\n%s\n' "$vmid" "$verdict" >&2
    exit 1
    ;;
  *)
    printf 'vfio-guard: could not judge VM %s (exit %s)\n%s\n' "$vmid" "$status" "$report" >&2
    [ "${VFIO_GUARD_STRICT:-0}" = "1" ] && exit 1
    exit 0
    ;;
esac
