#!/bin/sh
# Fetch a real Debian 12 kernel (vmlinuz-6.1.*-amd64) for the opt-in real-kernel tests and
# benchmarks. Uses `apt-get download` for the package linux-image-amd64 depends on, and
# extracts only boot/vmlinuz-* into images/cache/ (ignored by git). Prints the path.
#
#   images/fetch-debian-kernel.sh            # -> images/cache/vmlinuz-6.1.0-NN-amd64
#   DOMB_DEBIAN_KERNEL=$(images/fetch-debian-kernel.sh) swift test --filter RealKernel
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
mkdir -p "$cache"

existing=$(ls "$cache"/vmlinuz-6.1.*-amd64 2>/dev/null | head -n1 || true)
if [ -n "$existing" ] && [ -z "${DOMB_REFRESH:-}" ]; then
    echo "$existing"
    exit 0
fi

# The versioned package the meta package depends on, e.g. linux-image-6.1.0-26-amd64.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.[^ ]*-amd64\)$/\1/p' | head -n1)
if [ -z "$pkg" ]; then
    echo "fetch-debian-kernel: linux-image-amd64 does not depend on a linux-image-6.1.*-amd64 here;" >&2
    echo "  run 'apt-get update' first (Debian 12 'bookworm' sources needed)" >&2
    exit 1
fi

work=$(mktemp -d)
chmod 755 "$work"  # apt-get download drops privileges to _apt
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$pkg" >&2)
deb=$(ls "$work"/*.deb | head -n1)
mkdir "$work/x"
# dpkg-deb --fsys-tarfile streams data.tar; take only the kernel image.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards './boot/vmlinuz-*'
kernel=$(ls "$work"/x/boot/vmlinuz-* | head -n1)
cp "$kernel" "$cache/"
echo "$cache/$(basename "$kernel")"
