#!/bin/bash
# Image inspection benchmarks (issue 4), against named baselines:
#  1. Inspecting a 64 MiB ELF kernel reads only its headers and notes: bytes read (domb's own
#     count, and every read(2)/pread64(2) counted by strace) and time, versus `cat` of the file.
#  2. Decompressing the real Debian 12 kernel's xz payload: `domb inspect --no-digest` on the
#     bzImage (read, decompress, parse the ELF notes) versus `xz -dc` on the extracted payload.
#     Target: ratio <= 1.2.
# Usage: benchmarks/inspect-images.sh            (builds domb in release mode)
#        DOMB=/path/to/domb RUNS=7 benchmarks/inspect-images.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/benchmarks/out/images"
mkdir -p "$out"
runs=${RUNS:-5}
if [ -z "${DOMB:-}" ]; then
    (cd "$root" && swift build -c release --product domb >&2)
    DOMB="$root/.build/release/domb"
fi
now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

echo "== 1. 64 MiB ELF: bytes read"
make -s -C "$root/images"
# The PV test kernel plus 64 MiB of initialised data: a real loadable ELF of 64 MiB.
printf '.section .data.big,"aw"\n.fill %d, 1, 0x5a\n' $((64 * 1024 * 1024 - 16384)) > "$out/big.S"
gcc -c "$out/big.S" -o "$out/big.o"
ld -nostdlib -static --build-id=none -z noexecstack --no-warn-rwx-segments -T "$root/images/src/pv.lds" \
    "$root/images/out/pv.o" "$out/big.o" -o "$out/big.elf"
size=$(stat -c %s "$out/big.elf")
sync
best_inspect=""; best_cat=""
for _ in $(seq "$runs"); do
    t0=$(now); "$DOMB" inspect --no-digest "$out/big.elf" > /dev/null; t1=$(now)
    cat "$out/big.elf" > /dev/null; t2=$(now)
    d1=$((t1 - t0)); d2=$((t2 - t1))
    [ -z "$best_inspect" ] || [ "$d1" -lt "$best_inspect" ] && best_inspect=$d1
    [ -z "$best_cat" ] || [ "$d2" -lt "$best_cat" ] && best_cat=$d2
done
stats=$("$DOMB" inspect --no-digest --stats "$out/big.elf" 2>&1 >/dev/null)
read_bytes=$(echo "$stats" | sed -n 's/.*structure read \([0-9]*\) bytes.*/\1/p')
strace_bytes="n/a"
if command -v strace > /dev/null; then
    # Sum what read(2)/pread64(2) returned on the image's descriptor.
    strace -f -qq -e trace=openat,read,pread64 -o "$out/strace.log" "$DOMB" inspect --no-digest "$out/big.elf" > /dev/null
    fd=$(grep -F 'big.elf' "$out/strace.log" | grep openat | sed -n 's/.*= \([0-9]*\)$/\1/p' | head -n1)
    strace_bytes=$(grep -E "(read|pread64)\($fd," "$out/strace.log" | sed -n 's/.*= \([0-9]*\)$/\1/p' | awk '{ s += $1 } END { print s + 0 }')
fi
echo "image:                 $size bytes"
echo "domb bytes read:       $read_bytes ($(awk -v r="$read_bytes" -v s="$size" 'BEGIN { printf "%.4f", 100 * r / s }')% of the file)"
echo "strace read(2) bytes:  $strace_bytes (on the image's descriptor)"
echo "domb inspect time:     $(ms 0 "$best_inspect") ms (best of $runs, whole process, no sha256)"
echo "baseline cat:          $(ms 0 "$best_cat") ms (best of $runs, reads every byte)"
with_digest=$("$DOMB" inspect --stats "$out/big.elf" 2>&1 >/dev/null)
echo "with sha256:           ${with_digest#*: }"

echo
echo "== 2. Debian kernel xz payload: domb vs xz -dc"
kernel=${DOMB_DEBIAN_KERNEL:-$("$root/images/fetch-debian-kernel.sh")}
eval "$("$DOMB" inspect --json --no-digest "$kernel" | python3 -c '
import json, sys
r = json.load(sys.stdin)["images"][0]
print("offset=%d length=%d" % (r["bzImage"]["payloadOffset"], r["bzImage"]["payloadLength"]))')"
# The payload without its 4-byte size trailer (which xz would call trailing garbage).
python3 -c 'import sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2])); data = f.read(int(sys.argv[3]) - 4)
open(sys.argv[4], "wb").write(data)' "$kernel" "$offset" "$length" "$out/payload.xz"
best_xz=""; best_domb=""
for _ in $(seq "$runs"); do
    t0=$(now); xz -dc "$out/payload.xz" > /dev/null; t1=$(now)
    "$DOMB" inspect --no-digest "$kernel" > /dev/null; t2=$(now)
    d1=$((t1 - t0)); d2=$((t2 - t1))
    [ -z "$best_xz" ] || [ "$d1" -lt "$best_xz" ] && best_xz=$d1
    [ -z "$best_domb" ] || [ "$d2" -lt "$best_domb" ] && best_domb=$d2
done
ratio=$(awk -v d="$best_domb" -v x="$best_xz" 'BEGIN { printf "%.3f", d / x }')
echo "kernel:                $kernel ($(stat -c %s "$kernel") bytes, payload $length bytes)"
echo "baseline xz -dc:       $(ms 0 "$best_xz") ms (best of $runs)"
echo "domb inspect:          $(ms 0 "$best_domb") ms (best of $runs: read + decompress + parse notes)"
echo "ratio domb/xz:         $ratio (target <= 1.2) $(awk -v r="$ratio" 'BEGIN { print (r <= 1.2) ? "PASS" : "FAIL" }')"
