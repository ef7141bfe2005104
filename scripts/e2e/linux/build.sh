#!/bin/bash
# Builds the Linux guests of the device scenario (docs/e2e.md) from the Debian packages
# fetch.sh keeps in CACHE, into OUT:
#   vmlinuz          the Debian kernel (the same as dom0's)
#   guest.cpio.gz    busybox, xen-blkfront and xen-netfront, and init (this folder)
#   netdom.cpio.gz   the same plus xen-netback, the bridge, the Xen drivers xl needs, xl and
#                    its libraries, bash and /etc/xen/scripts: a network driver domain that
#                    runs `xl devd` (Xen's hotplug for backends in a driver domain)
# The role comes from the kernel command line (e2e_role=blk|net|netdom); see init.
#   scripts/e2e/linux/build.sh CACHE KVER OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${1:?usage: build.sh CACHE KVER OUT} KVER=${2:?} OUT=${3:?}
X=$CACHE/x
XEN_BIN=/usr/lib/xen-4.17/bin
mkdir -p "$OUT"
W=$(mktemp -d "${TMPDIR:-/tmp}/e2e-linux.XXXXXX")
trap 'rm -rf "$W"' EXIT
cp "$X/boot/vmlinuz-$KVER" "$OUT/vmlinuz"

module() { # ROOT NAME
  local ko; ko=$(find "$X/lib/modules/$KVER" -name "$2.ko" | head -n1)
  [ -n "$ko" ] || { echo "e2e: kernel module $2.ko not in the cache (run fetch.sh)" >&2; exit 2; }
  cp "$ko" "$1/lib/modules/"
}
base() { # ROOT
  mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,run,tmp,root,var/log/xen,var/lib/xen}
  ln -s ../run "$1/var/run"
  cp "$X/bin/busybox" "$1/bin/busybox"
  for a in $("$1/bin/busybox" --list); do [ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"; done
  cp "$HERE/init" "$1/init"
  # Linux runs /sbin/poweroff on a Xen poweroff request (orderly_poweroff) and /sbin/reboot
  # on a reboot request (orderly_reboot). busybox's own poweroff and reboot signal init,
  # which this /init (a shell) ignores: act at once instead. The kernel runs them with no
  # open files, hence /dev/console (hvc0) for the line.
  for a in poweroff reboot; do
    printf '#!/bin/sh\necho "E2E-GUEST %s" > /dev/console\nexec /bin/busybox %s -f\n' "$(echo $a | tr a-z A-Z)" "$a" > "$1/sbin/$a"
  done
  chmod +x "$1/init" "$1/sbin/poweroff" "$1/sbin/reboot"
  for m in xen-blkfront xen-netfront; do module "$1" "$m"; done
}
pack() { (cd "$1" && find . | cpio -o -H newc --quiet | gzip -9) > "$2"; }

base "$W/guest"
pack "$W/guest" "$OUT/guest.cpio.gz"

R=$W/netdom
base "$R"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs llc stp bridge xen-netback; do module "$R" "$m"; done
copy_with_libs() { # FILE
  mkdir -p "$R$(dirname "$1")"; cp -L "$1" "$R$1"
  for lib in $(ldd "$1" | grep -o '/[^ ]*\.so[^ ]*'); do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
  done
}
# xl (for `xl devd`), xenstore-* (the hotplug scripts), bash (they are bash scripts);
# libgcc_s is dlopen'ed by glibc's pthread_cancel (else xl aborts).
for b in $XEN_BIN/xl /usr/bin/xenstore /bin/bash /lib/x86_64-linux-gnu/libgcc_s.so.1; do copy_with_libs "$b"; done
for l in xenstore-read xenstore-write xenstore-list xenstore-rm xenstore-exists xenstore-ls; do ln -sf xenstore "$R/usr/bin/$l"; done
mkdir -p "$R/etc/xen"; cp -a /etc/xen/xl.conf /etc/xen/scripts "$R/etc/xen/"
find "$R/usr" "$R/lib" -type f -name '*.so*' -exec strip --strip-unneeded {} + 2>/dev/null || true
pack "$R" "$OUT/netdom.cpio.gz"
ls -l "$OUT" | awk 'NR > 1 { printf "   %s %d KB\n", $9, $5 / 1024 }'
