#!/usr/bin/env bash
# Bundle build benchmark (issue 6): `domb build` of eight 64 MiB images against the hashing
# floor, i.e. `openssl dgst` of the same files in the same banks, in the same run.
#
#   benchmarks/bundle-build.sh                 # builds domb in release mode first
#   DOMB=/path/to/domb BANKS=sha256,sha384 benchmarks/bundle-build.sh
#
# Needs: openssl, python3, GNU time (/usr/bin/time), make/gcc (the test guests). Prints CPU time (user + system, as
# other helpers' load on a shared machine would skew wall time) and wall time; the build
# also writes the 512 MiB archive and fsyncs it, which the floor does not.
# Targets: build / floor <= 1.25, peak RSS <= 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DOMB:-}" ]]; then
    swift build -c release --product domb >/dev/null
    DOMB=.build/release/domb
fi
for tool in openssl python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install openssl python3 time)" >&2; exit 1; }
done
BANKS=${BANKS:-sha1,sha256}
COUNT=8
REPEAT=${REPEAT:-3}
SIZE_MIB=64
WORK=$(mktemp -d /var/tmp/domb-bundle-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
source benchmarks/lib.sh

# Keys and the launch description: COUNT domains with one 64 MiB kernel each.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/signer.key" 2>/dev/null
openssl req -x509 -new -key "$WORK/signer.key" -subj /CN=bench -days 1 -out "$WORK/signer.pem" 2>/dev/null
make_images "$WORK" "$COUNT" "$SIZE_MIB"

cpu_of() { awk '{printf "%.3f", $1 + $2}' "$1"; }
wall_of() { awk '{printf "%.3f", $3}' "$1"; }
rss_of() { awk '{print $4}' "$1"; }

echo "== domb build of $COUNT x $SIZE_MIB MiB images, banks $BANKS (CMS, P-256), best of $REPEAT"
FLOOR_CPU=999; FLOOR_WALL=999; BUILD_CPU=999; BUILD_WALL=999; RSS_KIB=0
min() { python3 -c "print(min($1, $2))"; }
for _ in $(seq "$REPEAT"); do
    # Floor: openssl dgst once per bank over the same files.
    cpu=0; wall=0
    for bank in ${BANKS//,/ }; do
        /usr/bin/time -f "%U %S %e %M" -o "$WORK/floor.time" openssl dgst "-$bank" "${FILES[@]}" >/dev/null
        cpu=$(python3 -c "print($cpu + $(cpu_of "$WORK/floor.time"))")
        wall=$(python3 -c "print($wall + $(wall_of "$WORK/floor.time"))")
    done
    FLOOR_CPU=$(min "$FLOOR_CPU" "$cpu"); FLOOR_WALL=$(min "$FLOOR_WALL" "$wall")
    rm -f "$WORK/bench.bundle"
    SOURCE_DATE_EPOCH=1700000000 /usr/bin/time -f "%U %S %e %M" -o "$WORK/build.time" \
        "$DOMB" build "$WORK/launch.json" --key "$WORK/signer.key" --cert "$WORK/signer.pem" --banks "$BANKS" \
        -o "$WORK/bench.bundle" --no-progress >/dev/null
    BUILD_CPU=$(min "$BUILD_CPU" "$(cpu_of "$WORK/build.time")")
    BUILD_WALL=$(min "$BUILD_WALL" "$(wall_of "$WORK/build.time")")
    RSS_KIB=$(python3 -c "print(max($RSS_KIB, $(rss_of "$WORK/build.time")))")
done
"$DOMB" bundle verify "$WORK/bench.bundle" --cert "$WORK/signer.pem" >/dev/null

printf '   floor: openssl dgst (%s), CPU %6.3f s, wall %6.3f s\n' "$BANKS" "$FLOOR_CPU" "$FLOOR_WALL"
printf '   domb build (hash + archive + fsync), CPU %6.3f s, wall %6.3f s\n' "$BUILD_CPU" "$BUILD_WALL"
echo "   RATIO build / floor (CPU)  = $(python3 -c "print(f'{$BUILD_CPU / $FLOOR_CPU:.3f}')")   (target <= 1.25)"
echo "   RATIO build / floor (wall) = $(python3 -c "print(f'{$BUILD_WALL / $FLOOR_WALL:.3f}')")   (target <= 1.25; includes writing 512 MiB and fsync)"
echo "   peak RSS of domb build     = $((RSS_KIB / 1024)) MiB   (target <= 64 MiB)"
