#!/usr/bin/env bash
# Boot benchmark (issue 8): `domb boot` of a bundle of eight domains with 64 MiB images,
# plan backend, into a fresh swtpm, against the hashing floor (`openssl dgst` of the same
# images in the same banks, same run), and the TPM commands it sends.
#
#   benchmarks/boot.sh                  # builds domb in release mode first
#   DOMB=/path/to/domb REPEAT=3 benchmarks/boot.sh
#
# The boot verifies the signature first, then reads the archive once: every module is
# streamed into a sealed memfd and hashed in every active bank (swtpm: sha1, sha256,
# sha384, sha512) on the way. Targets: boot / floor <= 1.3; TPM commands = one per
# extended event + a fixed handful (2 capability queries + 1 PCR_Read per bank).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DOMB:-}" ]]; then
    swift build -c release --product domb >/dev/null
    DOMB=.build/release/domb
fi
for tool in openssl python3 swtpm /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (make deps; apt-get install time)" >&2; exit 1; }
done
BANKS=sha1,sha256,sha384,sha512
COUNT=8
REPEAT=${REPEAT:-3}
SIZE_MIB=64
WORK=$(mktemp -d /var/tmp/domb-boot-bench.XXXXXX)
SWTPM_PID=""
source benchmarks/lib.sh
trap 'stop_swtpm; rm -rf "$WORK"' EXIT

openssl genpkey -algorithm ed25519 -out "$WORK/signer.key" 2>/dev/null
openssl pkey -in "$WORK/signer.key" -pubout -out "$WORK/signer.pub" 2>/dev/null
make_images "$WORK" "$COUNT" "$SIZE_MIB"
"$DOMB" build "$WORK/launch.json" --key "$WORK/signer.key" --banks "$BANKS" -o "$WORK/bench.bundle" --no-progress >/dev/null
cat "$WORK/bench.bundle" >/dev/null  # warm the page cache

min() { python3 -c "print(min($1, $2))"; }
FLOOR=999; BOOT=999; BOOT_CPU=999; FLOOR_CPU=999; RSS=0; COMMANDS=""; EVENTS=""
for _ in $(seq "$REPEAT"); do
    cpu=0; wall=0
    for bank in ${BANKS//,/ }; do
        /usr/bin/time -f "%U %S %e" -o "$WORK/floor.time" openssl dgst "-$bank" "${FILES[@]}" >/dev/null
        read -r u s e <"$WORK/floor.time"
        cpu=$(python3 -c "print($cpu + $u + $s)"); wall=$(python3 -c "print($wall + $e)")
    done
    FLOOR=$(min "$FLOOR" "$wall"); FLOOR_CPU=$(min "$FLOOR_CPU" "$cpu")

    fresh_swtpm "$WORK/tpm"
    TSS2_LOG=all+none /usr/bin/time -f "%U %S %e %M" -o "$WORK/boot.time" "$DOMB" boot "$WORK/bench.bundle" \
        --pubkey "$WORK/signer.pub" --tpm "$TCTI" --backend plan \
        --eventlog "$WORK/eventlog.bin" --json >"$WORK/boot.json"
    stop_swtpm
    read -r u s e m <"$WORK/boot.time"
    BOOT=$(min "$BOOT" "$e"); BOOT_CPU=$(min "$BOOT_CPU" "$(python3 -c "print($u + $s)")")
    RSS=$(python3 -c "print(max($RSS, $m))")
    COMMANDS=$(python3 -c "import json; print(json.load(open('$WORK/boot.json'))['tpmCommands'])")
    EVENTS=$(python3 -c "import json; print(json.load(open('$WORK/boot.json'))['events'])")
done
EXTENDS=$((EVENTS))   # every record after the Spec ID header is extended
echo "== domb boot of $COUNT domains x $SIZE_MIB MiB, plan backend, swtpm, banks $BANKS, best of $REPEAT"
printf '   floor: openssl dgst per bank over the images: wall %6.3f s, CPU %6.3f s\n' "$FLOOR" "$FLOOR_CPU"
printf '   domb boot (verify, load into memfds, measure, build, close): wall %6.3f s, CPU %6.3f s\n' "$BOOT" "$BOOT_CPU"
echo "   RATIO boot / floor (wall) = $(python3 -c "print(f'{$BOOT / $FLOOR:.3f}')")   (target <= 1.3)"
echo "   RATIO boot / floor (CPU)  = $(python3 -c "print(f'{$BOOT_CPU / $FLOOR_CPU:.3f}')")"
echo "   TPM commands: $COMMANDS for $EXTENDS extended events (+$((COMMANDS - EXTENDS)) fixed: 2 capability queries, 1 PCR_Read per bank)"
echo "   peak RSS of domb boot = $((RSS / 1024)) MiB"
