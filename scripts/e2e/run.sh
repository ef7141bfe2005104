#!/bin/bash
# End-to-end harness: real Xen 4.17 under QEMU (TCG) with a Debian PV dom0, a host swtpm as
# the TPM TIS device, and domb running inside dom0. See docs/e2e.md.
#
#   scripts/e2e/run.sh [options]        (make e2e runs it with no options)
#     --payload SRC[=DEST]  copy host file or folder SRC to dom0 /e2e/payload/DEST (default: its name)
#     --fragment FILE       a dom0 check script (sh, sourced after the built-in checks, in order given)
#     --bin PATH            put host executable PATH in dom0 /usr/local/bin with the libraries it links
#     --host-check FILE     run `FILE RUN_DIR` on the host after QEMU exits; its exit status is a check
#     --no-builtin          leave out the built-in checks (dom0/checks/*.sh)
#     --domb PATH           use this domb binary instead of building a release one
#     --timeout SECONDS     limit for the QEMU run (default 600); the harness then kills QEMU
#     --shell               after the checks, leave a dom0 shell on this terminal (no report)
# Env: E2E_DIR (default REPO/.e2e: cache/ keeps the Debian packages between runs, build/ the
# images of the last run; each run writes run-<UTC time>/ and points .e2e/last at it), E2E_MEM (MB, default 1536),
# E2E_DOM0_MEM (default 512M: the initramfs is ~140 MB unpacked, the Swift runtime and
# the ICU data most of it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
E2E_DIR=${E2E_DIR:-$REPO/.e2e}
CACHE=$E2E_DIR/cache
MEM=${E2E_MEM:-1536}
DOM0_MEM=${E2E_DOM0_MEM:-512M}
TIMEOUT=600
BUILTIN=1
SHELL_AFTER=0
DOMB=""
PAYLOADS=() FRAGMENTS=() BINS=() HOST_CHECKS=()
XEN_BIN=/usr/lib/xen-4.17/bin
DOM0_MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs"
# In dom0 for checks to load (insmod /lib/modules/NAME.ko): a vbd backend on a file.
DOM0_EXTRA_MODULES="xen-blkback loop"
# Host tools for dom0 (from xen-utils-4.17 and xenstore-utils; they must match the hypervisor).
# bash runs Xen's hotplug scripts (/etc/xen/scripts/block, vif-bridge); they lock with util-linux
# flock (not in busybox).
XEN_TOOLS="$XEN_BIN/xl $XEN_BIN/xenstored $XEN_BIN/xenconsoled $XEN_BIN/xen-init-dom0 $XEN_BIN/xenconsole
  $XEN_BIN/libxl-save-helper /usr/bin/xenstore /bin/bash /usr/bin/flock"
XENSTORE_LINKS="xenstore-ls xenstore-read xenstore-write xenstore-list xenstore-rm xenstore-exists
  xenstore-chmod xenstore-watch"
# Loaded with dlopen, so ldd does not list them: libgcc_s (glibc's pthread_cancel; without it
# xl aborts) and the TCTI that tss2-tctildr loads for `device:` (checked with LD_DEBUG=files).
DLOPENED="/lib/x86_64-linux-gnu/libgcc_s.so.1 /lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"

die() { echo "e2e: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --payload) PAYLOADS+=("$2"); shift 2;;
    --fragment) [ -f "$2" ] || die "no fragment $2"; FRAGMENTS+=("$(realpath "$2")"); shift 2;;
    --bin) BINS+=("$2"); shift 2;;
    --host-check) [ -f "$2" ] || die "no host check $2"; HOST_CHECKS+=("$(realpath "$2")"); shift 2;;
    --no-builtin) BUILTIN=0; shift;;
    --domb) DOMB=$(realpath "$2"); shift 2;;
    --timeout) TIMEOUT=$2; shift 2;;
    --shell) SHELL_AFTER=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) die "unknown option $1 (see --help)";;
  esac
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants seconds"

for tool in qemu-system-x86_64 swtpm apt-get apt-cache dpkg-deb cpio gzip python3 ldd strip make gcc ld "$XEN_BIN/xl" /usr/bin/xenstore; do
  command -v "$tool" >/dev/null || die "missing $tool: run scripts/install-deps.sh --e2e"
done

RUN=$E2E_DIR/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$CACHE" "$RUN"
# Keep the last 10 run folders (logs and the files dom0 sent back; each is small).
ls -1d "$E2E_DIR"/run-* | head -n -10 | xargs -r rm -rf
ln -sfn "$(basename "$RUN")" "$E2E_DIR/last"
TIMINGS=$RUN/timings.txt
: > "$TIMINGS"
phase_start=0
phase() { phase_start=$(date +%s.%N); echo "== $1"; }
phase_end() { awk -v n="$1" -v a="$phase_start" -v b="$(date +%s.%N)" 'BEGIN { printf "phase.%s %.2f\n", n, b - a }' >> "$TIMINGS"; }

# Processes this run started; all are killed with -9 on any exit, and none may survive.
QEMU_PID="" SWTPM_PID="" STAMP_PID=""
cleanup() {
  local rc=$?
  for pid in $QEMU_PID $SWTPM_PID $STAMP_PID; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in $QEMU_PID $SWTPM_PID $STAMP_PID; do wait "$pid" 2>/dev/null || true; done
  if pgrep -af -- "$RUN" >&2; then echo "e2e: processes of this run are still alive (above)" >&2; rc=1; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Debian packages (scripts/e2e/fetch.sh): the hypervisor at the host's Xen tools'
# version, the kernel linux-image-amd64 depends on and its modules, busybox-static.
phase fetch
XEN_VERSION=$(dpkg-query -W -f='${Version}' xen-utils-4.17)
KVER=$("$HERE/fetch.sh" "$CACHE")
KPKG=linux-image-$KVER
echo "   Xen $XEN_VERSION, kernel $KVER (cache: $CACHE)"
phase_end fetch

# --- 2. domb, release build.
phase build-domb
if [ -z "$DOMB" ]; then
  (cd "$REPO" && swift build -c release --product domb 2>&1 | tail -n 3)
  DOMB=$(cd "$REPO" && swift build -c release --show-bin-path)/domb
fi
[ -x "$DOMB" ] || die "no domb binary at $DOMB"
phase_end build-domb

# --- 3. The initramfs for the test guest and for dom0.
phase initramfs
B=$E2E_DIR/build   # rebuilt by every run (so two runs at once must use two E2E_DIRs)
rm -rf "$B"; mkdir -p "$B"
zcat "$CACHE/x/boot/xen-4.17-amd64.gz" > "$B/xen.elf"   # multiboot ELF for qemu -kernel
cp "$CACHE/x/boot/vmlinuz-$KVER" "$B/vmlinuz"

G=$B/guest-root
mkdir -p "$G"/{bin,proc,sys,dev}
cp "$CACHE/x/bin/busybox" "$G/bin/busybox"
for a in sh mount echo cat cut poweroff uname; do ln -s busybox "$G/bin/$a"; done
cp "$HERE/guest/init" "$G/init"
(cd "$G" && find . | cpio -o -H newc --quiet | gzip -9) > "$B/guest-initrd.gz"

R=$B/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib64,proc,sys,dev,run,tmp,etc/xen,var/lib/xen,lib/modules,root}
mkdir -p "$R"/e2e/{checks,payload,guest}
ln -s ../run "$R/var/run"
cp "$CACHE/x/bin/busybox" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
# copy_with_libs FILE [DEST]: FILE at DEST (default: the same path) and every library ldd lists.
copy_with_libs() {
  local dest=${2:-$1} lib
  mkdir -p "$R$(dirname "$dest")"; cp -L "$1" "$R$dest"
  for lib in $(ldd "$1" | grep -o '/[^ ]*\.so[^ ]*'); do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
  done
}
for t in $XEN_TOOLS; do copy_with_libs "$t"; done
for l in $XENSTORE_LINKS; do ln -sf xenstore "$R/usr/bin/$l"; done
for l in $DLOPENED; do copy_with_libs "$l"; done
copy_with_libs "$DOMB" /usr/local/bin/domb
for b in ${BINS[@]+"${BINS[@]}"}; do
  p=$(command -v "$b") || die "--bin $b: not found"
  copy_with_libs "$p" "/usr/local/bin/$(basename "$p")"
done
cp -a /etc/xen/xl.conf "$R/etc/xen/"; cp -a /etc/xen/scripts "$R/etc/xen/"
for m in $DOM0_MODULES $DOM0_EXTRA_MODULES; do
  ko=$(find "$CACHE/x/lib/modules/$KVER" -name "$m.ko" | head -n1)
  [ -n "$ko" ] || die "kernel module $m.ko not in $KPKG"
  cp "$ko" "$R/lib/modules/"
done
cp "$B/vmlinuz" "$R/e2e/guest/vmlinuz"; cp "$B/guest-initrd.gz" "$R/e2e/guest/initrd.gz"
# The project's test guests (images/: a few KB, built with gcc and ld in well under a second).
make -s -C "$REPO/images" OUT="$B/images" >/dev/null
mkdir -p "$R/e2e/images"; cp "$B"/images/*.elf "$B"/images/ramdisk.cpio* "$R/e2e/images/"
cp "$HERE/dom0/init" "$R/init"; cp "$HERE/dom0/lib.sh" "$R/e2e/lib.sh"
[ $BUILTIN = 1 ] && cp "$HERE"/dom0/checks/*.sh "$R/e2e/checks/"
n=50
for f in ${FRAGMENTS[@]+"${FRAGMENTS[@]}"}; do cp "$f" "$R/e2e/checks/$n-$(basename "$f" .sh).sh"; n=$((n + 1)); done
for p in ${PAYLOADS[@]+"${PAYLOADS[@]}"}; do
  src=${p%%=*}; dest=${p#*=}; [ "$dest" = "$p" ] && dest=$(basename "$src")
  [ -e "$src" ] || die "--payload $src: not found"
  mkdir -p "$(dirname "$R/e2e/payload/$dest")"; cp -a "$src" "$R/e2e/payload/$dest"
done
# Debug symbols are no use in dom0 and cost memory there (the Swift runtime, domb).
find "$R/opt" "$R/usr/local/bin" -type f -exec strip --strip-unneeded {} + 2>/dev/null || true
ls "$R/e2e/checks" | grep -q . || die "no checks to run (--no-builtin and no --fragment)"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$B/dom0-initrd.gz"
echo "   dom0 initramfs $(du -m "$B/dom0-initrd.gz" | cut -f1) MB gzip ($(du -sm "$R" | cut -f1) MB unpacked); checks: $(ls "$R/e2e/checks" | tr '\n' ' ')"
phase_end initramfs

# --- 4. A fresh host swtpm; QEMU exposes it to the machine as a TPM TIS device.
phase swtpm
mkdir -p "$RUN/tpm"
swtpm socket --tpm2 --tpmstate dir="$RUN/tpm" --ctrl type=unixio,path="$RUN/swtpm.sock" \
  --flags startup-clear --log file="$RUN/swtpm.log" &
SWTPM_PID=$!
for _ in $(seq 50); do [ -S "$RUN/swtpm.sock" ] && break; sleep 0.1; done
[ -S "$RUN/swtpm.sock" ] || die "swtpm did not create $RUN/swtpm.sock (see $RUN/swtpm.log)"
phase_end swtpm

# --- 5. Boot. Flags from shared/reference/xen-under-qemu.md: +svm +npt (HAP, which PVH
# needs: Debian's Xen has no shadow paging), +rdrand (dom0's RNG ready at once); a dom0 crash
# makes Xen reboot, and -no-reboot turns that into QEMU exiting. Multiboot module arguments
# must not contain commas (QEMU splits -initrd on them).
phase boot
# rootfstype=ramfs: the initramfs would not fit a tmpfs root, which is capped at half of RAM.
DOM0_ARGS="console=hvc0 loglevel=4 rootfstype=ramfs"
[ $SHELL_AFTER = 1 ] && DOM0_ARGS="$DOM0_ARGS e2e_shell"
QEMU=(qemu-system-x86_64 -machine pc -accel tcg -cpu qemu64,+svm,+npt,+rdrand -m "$MEM" -smp 2
  -display none -monitor none -serial stdio -no-reboot
  -chardev socket,id=chrtpm,path="$RUN/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
  -device tpm-tis,tpmdev=tpm0
  -kernel "$B/xen.elf"
  -append "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=$DOM0_MEM,max:$DOM0_MEM bootscrub=0 console_timestamps=boot serial_tx_buffer=256k"
  -initrd "$B/vmlinuz $DOM0_ARGS,$B/dom0-initrd.gz")
if [ $SHELL_AFTER = 1 ]; then "${QEMU[@]}"; exit 0; fi
mkfifo "$RUN/serial.fifo"
T0=$(date +%s.%N)
python3 "$HERE/serial.py" stamp "$RUN/serial.log" "$T0" < "$RUN/serial.fifo" &
STAMP_PID=$!
"${QEMU[@]}" < /dev/null > "$RUN/serial.fifo" 2> "$RUN/qemu.stderr" &
QEMU_PID=$!
TIMED_OUT=0 QEMU_TICKS=0 TICKS_PER_S=$(getconf CLK_TCK)
while kill -0 "$QEMU_PID" 2>/dev/null; do
  # QEMU's CPU time (utime + stime): unlike wall time, it hardly depends on the host's load.
  QEMU_TICKS=$(awk '{ print $14 + $15 }' "/proc/$QEMU_PID/stat" 2>/dev/null || echo "$QEMU_TICKS")
  if (( $(date +%s) - ${T0%.*} >= TIMEOUT )); then
    TIMED_OUT=1; echo "e2e: QEMU still running after ${TIMEOUT}s: killing it" >&2
    kill -9 "$QEMU_PID"; break
  fi
  sleep 0.2
done
QEMU_RC=0; wait "$QEMU_PID" || QEMU_RC=$?
QEMU_PID=""
wait "$STAMP_PID" || true; STAMP_PID=""
phase_end boot
awk -v t="$QEMU_TICKS" -v hz="$TICKS_PER_S" 'BEGIN { printf "qemu.cpu-seconds %.1f\n", t / hz }' >> "$TIMINGS"
# swtpm ends when QEMU disconnects; give it a moment, then the trap's kill -9 is a backstop.
for _ in $(seq 30); do kill -0 "$SWTPM_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SWTPM_PID" 2>/dev/null; then kill -9 "$SWTPM_PID"; fi
wait "$SWTPM_PID" 2>/dev/null || true; SWTPM_PID=""
[ -s "$RUN/qemu.stderr" ] && sed 's/^/   qemu: /' "$RUN/qemu.stderr"

# --- 6. Host-side checks on what dom0 sent back, then the report.
phase host-checks
: > "$RUN/host-results.txt"
[ $TIMED_OUT = 1 ] && echo "fail timeout QEMU ran longer than ${TIMEOUT}s and was killed" >> "$RUN/host-results.txt"
[ $TIMED_OUT = 0 ] && [ $QEMU_RC != 0 ] && echo "fail qemu-exit QEMU exited with status $QEMU_RC" >> "$RUN/host-results.txt"
python3 "$HERE/serial.py" extract "$RUN"   # the files dom0 sent, for the host checks
for c in ${HOST_CHECKS[@]+"${HOST_CHECKS[@]}"}; do
  name=host:$(basename "$c" .sh)
  if out=$(DOMB="$DOMB" E2E_RUN="$RUN" E2E_FILES="$RUN/files" bash "$c" "$RUN" 2>&1); then
    echo "pass $name $(echo "$out" | tail -n1)" >> "$RUN/host-results.txt"
  else
    echo "fail $name $(echo "$out" | tail -n1)" >> "$RUN/host-results.txt"
    echo "$out" | sed "s/^/   [$name] /" | tail -n 30
  fi
done
phase_end host-checks
RC=0
python3 "$HERE/serial.py" report "$RUN" || RC=1
echo "== phase timings (s): $RUN/timings.txt"
sed 's/^/   /' "$TIMINGS"
echo "e2e: run folder $RUN"
exit $RC
