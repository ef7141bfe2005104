#!/bin/bash
# Fetches the Debian packages of the e2e harness into CACHE (downloaded, never installed)
# and prints the kernel version: the hypervisor at the host's xen-utils version, the kernel
# linux-image-amd64 depends on (its vmlinuz and the modules below only: all of it is 400 MB
# unpacked), busybox-static. Reused until the wanted versions or modules change.
#   scripts/e2e/fetch.sh CACHE      (run.sh and boot-scenario.sh call it)
set -euo pipefail
CACHE=${1:?usage: fetch.sh CACHE}
# dom0's Xen drivers; the block backend and loop devices dom0 serves a vbd with; the PV
# front and back ends and the bridge the Linux guests of the device scenario load.
MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback loop xen-blkfront xen-netfront
  xen-netback bridge stp llc"
die() { echo "e2e: $*" >&2; exit 2; }
mkdir -p "$CACHE"
XEN_VERSION=$(dpkg-query -W -f='${Version}' xen-utils-4.17)
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
[ -n "$KPKG" ] || KPKG=$(cat "$CACHE/kernel-package" 2>/dev/null) \
  || die "apt-cache does not know linux-image-amd64: run apt-get update"
WANT="xen-hypervisor-4.17-amd64=$XEN_VERSION $KPKG busybox-static"
WANTED="$WANT modules: $(echo $MODULES)"
if [ "$(cat "$CACHE/wanted" 2>/dev/null)" != "$WANTED" ] || [ ! -f "$CACHE/x/bin/busybox" ]; then
  rm -rf "$CACHE/debs" "$CACHE/x"; mkdir -p "$CACHE/debs" "$CACHE/x"
  # shellcheck disable=SC2086
  (cd "$CACHE/debs" && apt-get download -q $WANT 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2)
  for deb in "$CACHE"/debs/xen-hypervisor-*.deb "$CACHE"/debs/busybox-static_*.deb; do
    dpkg-deb -x "$deb" "$CACHE/x"
  done
  patterns=("./boot/vmlinuz-*")
  for m in $MODULES; do patterns+=("*/$m.ko"); done
  dpkg-deb --fsys-tarfile "$CACHE"/debs/linux-image-*.deb | tar -x -C "$CACHE/x" --wildcards "${patterns[@]}"
  for m in $MODULES; do
    [ -n "$(find "$CACHE/x/lib/modules" -name "$m.ko" | head -n1)" ] || die "kernel module $m.ko not in $KPKG"
  done
  echo "$KPKG" > "$CACHE/kernel-package"
  echo "$WANTED" > "$CACHE/wanted"
fi
echo "${KPKG#linux-image-}"
