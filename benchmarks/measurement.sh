#!/usr/bin/env bash
# Measurement benchmarks (issues 5 and 20). Prints ratios against the named baselines.
#
#   benchmarks/measurement.sh            # builds domb in release mode first; every section
#   benchmarks/measurement.sh 5          # only the sections named (digits 1-7, e.g. 67)
#   DOMB=/path/to/domb REPEAT=5 benchmarks/measurement.sh
#
# Needs: openssl, tpm2_eventlog (tpm2-tools), swtpm, python3, GNU time (/usr/bin/time),
# strace, taskset (util-linux), make/gcc (the test guests of section 7).
# Timings are CPU time (user + system, from GNU time or getrusage), as `openssl speed`
# counts time, so that other load on a shared machine does not skew the ratios. Sections
# 6 and 7 compare wall time on two cores with the single-thread path (DOMB_HASH_THREADS=1),
# alternating the two REPEAT times and keeping the best of each; the load average is
# printed next to them, since other load on the machine eats into the parallel side.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DOMB:-}" ]]; then
    swift build -c release --product domb >/dev/null
    DOMB=.build/release/domb
fi
for tool in openssl tpm2_eventlog swtpm python3 /usr/bin/time strace taskset make; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool (apt-get install openssl tpm2-tools swtpm python3 time strace util-linux make)" >&2; exit 1; }
done
REPEAT=${REPEAT:-3}
WORK=$(mktemp -d /var/tmp/domb-bench.XXXXXX)
SWTPM_PID=""
source benchmarks/lib.sh
trap 'stop_swtpm; rm -rf "$WORK"' EXIT
FOUR=sha1,sha256,sha384,sha512
CPUS=$(two_cpus)
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
SECTIONS=${1:-1234567}
want() { [[ "$SECTIONS" == *"$1"* ]]; }
DATA=$WORK/data-1g
data() { [[ -f "$DATA" ]] || head -c $((1 << 30)) /dev/urandom >"$DATA"; }
TCTI=""
start_swtpm() {
    [[ -n "$TCTI" ]] && return
    local port=$((20000 + RANDOM % 30000 & ~1))
    mkdir -p "$WORK/tpm"
    swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
    SWTPM_PID=$!
    sleep 0.5
    TCTI="swtpm:host=127.0.0.1,port=$port"
}
cpu() { # cpu SECONDS-FILE COMMAND...: runs COMMAND, stores user+sys seconds (stderr in SECONDS-FILE.err)
    local out=$1; shift
    /usr/bin/time -f "%U %S %M" -o "$out.time" "$@" >/dev/null 2>"$out.err"
    awk '{printf "%.3f\n", $1 + $2}' "$out.time" >"$out"
}
cpu_runs() { # cpu_runs N SECONDS-FILE COMMAND...: CPU seconds per run, over N runs (GNU time counts 10 ms ticks)
    local n=$1 out=$2 total=0; shift 2
    for _ in $(seq "$n"); do cpu "$out.1" "$@"; total=$(python3 -c "print($total + $(cat "$out.1"))"); done
    python3 -c "print(f'{$total / $n:.4f}')" >"$out"
}

if want 1; then
echo "== 1. sha256 throughput: domb vs openssl speed -evp sha256 (single core)"
data
"$DOMB" digest --banks sha256 "$DATA" >/dev/null  # warm the page cache
SPEED=$(openssl speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null | awk '/^sha256/ {sub("k","",$2); print $2 * 1000}')
"$DOMB" digest --banks sha256 --stats "$DATA" 2>"$WORK/d.stats" >/dev/null
/usr/bin/time -f "%U %S" -o "$WORK/d.time" "$DOMB" digest --banks sha256 "$DATA" >/dev/null
read -r USER SYS <"$WORK/d.time"
DOMB_HASH=$(python3 -c "print((1 << 30) / $USER)")
DOMB_ALL=$(python3 -c "print((1 << 30) / ($USER + $SYS))")
/usr/bin/time -f "%U %S" -o "$WORK/o.time" openssl dgst -sha256 "$DATA" >/dev/null
read -r OUSER OSYS <"$WORK/o.time"
OSSL_FILE=$(python3 -c "print((1 << 30) / ($OUSER + $OSYS))")
printf '   openssl speed -evp sha256 (16 KiB blocks):   %8.0f MiB/s\n' "$(python3 -c "print($SPEED / 1048576)")"
printf '   domb digest, hashing (user CPU):              %8.0f MiB/s\n' "$(python3 -c "print($DOMB_HASH / 1048576)")"
printf '   domb digest, incl. reading (user+sys CPU):    %8.0f MiB/s\n' "$(python3 -c "print($DOMB_ALL / 1048576)")"
printf '   openssl dgst -sha256 same file (user+sys):    %8.0f MiB/s\n' "$(python3 -c "print($OSSL_FILE / 1048576)")"
echo "   RATIO hashing / openssl speed = $(ratio "$DOMB_HASH" "$SPEED")   (target >= 0.9)"
echo "   RATIO end-to-end / openssl dgst on the file = $(ratio "$DOMB_ALL" "$OSSL_FILE")"
fi

if want 2; then
echo "== 2. four banks in one pass vs four single-bank passes (hashing CPU time, single-thread path)"
data
export DOMB_HASH_THREADS=1
SUM=0
for bank in sha1 sha256 sha384 sha512; do
    /usr/bin/time -f "%U" -o "$WORK/$bank.time" "$DOMB" digest --banks "$bank" "$DATA" >/dev/null
    T=$(cat "$WORK/$bank.time"); SUM=$(python3 -c "print($SUM + $T)")
    echo "   $bank alone: ${T}s"
done
/usr/bin/time -f "%U" -o "$WORK/four.time" "$DOMB" digest --banks sha1,sha256,sha384,sha512 --stats "$DATA" \
    >/dev/null 2>"$WORK/four.stats"
FOUR=$(cat "$WORK/four.time")
echo "   four banks, one pass: ${FOUR}s; sum of single passes: ${SUM}s"
echo "   RATIO one pass / sum = $(ratio "$FOUR" "$SUM")   (target <= 1.1)"
echo "   read once: $(sed -E 's/.*size ([0-9]+) bytes-read ([0-9]+) read-calls ([0-9]+).*/size \1, bytes read \2 in \3 read() calls/' "$WORK/four.stats")"
unset DOMB_HASH_THREADS
fi

want 6 || rm -f "$DATA"  # section 6 hashes the same file

if want 3; then
echo "== 3. peak RSS of domb measure on a 2 GiB file (all banks, into swtpm)"
BIG=$WORK/big-2g
head -c $((2 << 30)) /dev/urandom >"$BIG"
start_swtpm
/usr/bin/time -f "%M" -o "$WORK/rss" "$DOMB" measure --tpm "$TCTI" --log "$WORK/big.log" "$BIG" >/dev/null
RSS_KIB=$(cat "$WORK/rss")
echo "   peak RSS: $((RSS_KIB / 1024)) MiB   RATIO to 64 MiB = $(ratio "$RSS_KIB" 65536)   (target <= 1.0)"
rm -f "$BIG"
fi

if want 4; then
echo "== 4. one TPM command per extended event (TPM.commandCount)"
start_swtpm
for i in 1 2 3 4 5 6 7 8 9 10; do head -c 4096 /dev/urandom >"$WORK/m$i"; done
"$DOMB" measure --tpm "$TCTI" --log "$WORK/ten.log" --stats --close "$WORK"/m{1,2,3,4,5,6,7,8,9,10} \
    >/dev/null 2>"$WORK/cmd.stats"
COMMANDS=$(awk '{print $2}' "$WORK/cmd.stats"); EXTENDED=$(awk '{print $NF}' "$WORK/cmd.stats")
echo "   $(cat "$WORK/cmd.stats")"
echo "   RATIO (commands - 1 capability query) / extended events = $(ratio "$((COMMANDS - 1))" "$EXTENDED")   (target = 1)"
tpm2_eventlog "$WORK/ten.log" >/dev/null 2>"$WORK/ten.err"
echo "   tpm2_eventlog warnings on that log: $(wc -l <"$WORK/ten.err")"

fi

if want 5; then
echo "== 5. parse + replay of a 100,000-event log vs tpm2_eventlog"
# A firmware-shaped log: an H-CRTM record and a StartupLocality-free PCR 0, 100,000 EV_IPL
# records on PCR 12 in sha1 + sha256, and 64 KiB of zero fill after the last record (a
# fixed-size log area), so the quirk paths are part of what is timed.
python3 - "$WORK/100k.log" <<'PY'
import hashlib, struct, sys
out = bytearray()
spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 2) + struct.pack("<HHHH", 4, 20, 11, 32) + b"\0"
out += struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(spec)) + spec
def record(pcr, kind, data):
    return (struct.pack("<III", pcr, kind, 2) + struct.pack("<H", 4) + hashlib.sha1(data).digest()
            + struct.pack("<H", 11) + hashlib.sha256(data).digest() + struct.pack("<I", len(data)) + data)
out += record(0, 0x80000010, b"HCRTM")
for i in range(100_000):
    out += record(12, 0xD, b"domb:bench:%06d\0payload" % i)
out += bytes(64 << 10)
open(sys.argv[1], "wb").write(out)
PY
echo "   log: $(stat -c %s "$WORK/100k.log") bytes, 100,001 records + 64 KiB zero fill"
cpu_runs 3 "$WORK/t.tools" tpm2_eventlog "$WORK/100k.log"
cpu_runs 10 "$WORK/t.domb" "$DOMB" log replay "$WORK/100k.log"
TT=$(cat "$WORK/t.tools"); TD=$(cat "$WORK/t.domb")
echo "   tpm2_eventlog: ${TT}s CPU per run (3 runs)   domb log replay: ${TD}s CPU per run (10 runs)"
# PCR 12 must agree (PCR 0 differs by design: tpm2-tools 5.4 ignores the H-CRTM start value).
tpm2_eventlog "$WORK/100k.log" 2>/dev/null | sed -n '/^pcrs:/,$p' | grep -i ' 12 ' | awk '{print tolower($3)}' >"$WORK/a"
"$DOMB" log replay "$WORK/100k.log" 2>"$WORK/quirks" | grep ' 12: ' | awk '{print tolower($2)}' >"$WORK/b"
[[ $(wc -l <"$WORK/b") -eq 2 ]] && cmp -s "$WORK/a" "$WORK/b" && echo "   same PCR 12 values in both banks" || echo "   PCR VALUES DIFFER"
sed 's/^[^:]*: /   domb: /' "$WORK/quirks"
echo "   RATIO tpm2_eventlog / domb = $(ratio "$TT" "$TD")   (target >= 10)"
fi

if want 6; then
data
echo "== 6. four banks over 1 GiB: two cores vs the single-thread path (DOMB_HASH_THREADS=1), best of $REPEAT"
if [[ -z "$CPUS" ]]; then
    echo "   this process may run on one CPU only: nothing to compare (the single-thread path is the only one)"
else
    echo "   load average before: $(load_average)"
    ST_WALL=999; ST_CPU=999; MT_WALL=999; MT_CPU=999; MT_RSS=0; ST_RSS=0
    for _ in $(seq "$REPEAT"); do
        DOMB_HASH_THREADS=1 taskset -c "$CPUS" /usr/bin/time -f "%e %U %S %M" -o "$WORK/st.time" \
            "$DOMB" digest --banks "$FOUR" "$DATA" >"$WORK/st.out"
        taskset -c "$CPUS" /usr/bin/time -f "%e %U %S %M" -o "$WORK/mt.time" \
            "$DOMB" digest --banks "$FOUR" --stats "$DATA" >"$WORK/mt.out" 2>"$WORK/mt.stats"
        cmp -s "$WORK/st.out" "$WORK/mt.out" || { echo "   DIGESTS DIFFER between the two paths" >&2; exit 1; }
        read -r e u s m <"$WORK/st.time"
        ST_WALL=$(python3 -c "print(min($ST_WALL, $e))"); ST_CPU=$(python3 -c "print(min($ST_CPU, $u + $s))")
        ST_RSS=$(python3 -c "print(max($ST_RSS, $m))")
        read -r e u s m <"$WORK/mt.time"
        MT_WALL=$(python3 -c "print(min($MT_WALL, $e))"); MT_CPU=$(python3 -c "print(min($MT_CPU, $u + $s))")
        MT_RSS=$(python3 -c "print(max($MT_RSS, $m))")
    done
    echo "   load average after:  $(load_average)"
    for bank in ${FOUR//,/ }; do
        openssl dgst "-$bank" -r "$DATA" | awk -v b="$bank" -v f="$DATA" '{print b ":" $1 "  " f}'
    done | cmp -s - "$WORK/mt.out" && echo "   every bank equals openssl dgst" || { echo "   DIGESTS DIFFER from openssl dgst" >&2; exit 1; }
    THREADS=$(sed -E 's/.*hash-threads ([0-9]+).*/\1/' "$WORK/mt.stats")
    printf '   single-thread path: wall %6.3f s, CPU %6.3f s, peak RSS %d MiB\n' "$ST_WALL" "$ST_CPU" "$((ST_RSS / 1024))"
    printf '   %s hashing threads on CPUs %s: wall %6.3f s, CPU %6.3f s, peak RSS %d MiB\n' \
        "$THREADS" "$CPUS" "$MT_WALL" "$MT_CPU" "$((MT_RSS / 1024))"
    echo "   RATIO wall two cores / single-thread = $(ratio "$MT_WALL" "$ST_WALL")   (target <= 0.75)"
    echo "   RATIO CPU two cores / single-thread  = $(ratio "$MT_CPU" "$ST_CPU")   (target <= 1.05)"
    echo "   RATIO peak RSS / 64 MiB              = $(ratio "$MT_RSS" 65536)   (target <= 1.0)"
    # The independent count of read(2) calls: strace, every thread, the whole process.
    taskset -c "$CPUS" strace -f -c -e trace=read -o "$WORK/strace" "$DOMB" digest --banks "$FOUR" --stats "$DATA" \
        >/dev/null 2>"$WORK/mt.stats"
    READS=$(awk '$NF == "read" {print $4}' "$WORK/strace")
    echo "   read once: $(sed -E 's/.*size ([0-9]+) bytes-read ([0-9]+) read-calls ([0-9]+).*/size \1, bytes read \2 in \3 read() calls of the file/' "$WORK/mt.stats")"
    echo "   read() calls of the whole process (strace -f -c): $READS   (the file's, plus the loader's and /proc reads)"
fi
rm -f "$DATA"
fi


if want 7; then
stop_swtpm; TCTI=""  # sections 3 and 4 share one swtpm; each boot here gets a fresh one
echo "== 7. domb boot of 8 x 64 MiB modules, four banks, plan backend, swtpm: two cores vs DOMB_HASH_THREADS=1, best of $REPEAT"
if [[ -z "$CPUS" ]]; then
    echo "   this process may run on one CPU only: nothing to compare"
else
    mkdir -p "$WORK/boot"
    make_images "$WORK/boot" 8 64
    openssl genpkey -algorithm ed25519 -out "$WORK/boot/signer.key" 2>/dev/null
    openssl pkey -in "$WORK/boot/signer.key" -pubout -out "$WORK/boot/signer.pub" 2>/dev/null
    "$DOMB" build "$WORK/boot/launch.json" --key "$WORK/boot/signer.key" --banks "$FOUR" -o "$WORK/boot/bench.bundle" \
        --no-progress >/dev/null
    rm -f "${FILES[@]}"
    cat "$WORK/boot/bench.bundle" >/dev/null
    echo "   load average before: $(load_average)"
    declare -A BOOT_WALL=([1]=999 [auto]=999) BOOT_CPU=([1]=999 [auto]=999)
    for _ in $(seq "$REPEAT"); do
        for mode in 1 auto; do
            fresh_swtpm "$WORK/boot/tpm"
            rm -f "$WORK/boot/eventlog.$mode"
            if [[ $mode == 1 ]]; then export DOMB_HASH_THREADS=1; else unset DOMB_HASH_THREADS; fi
            taskset -c "$CPUS" /usr/bin/time -f "%e %U %S" -o "$WORK/boot/time" "$DOMB" boot "$WORK/boot/bench.bundle" \
                --pubkey "$WORK/boot/signer.pub" --tpm "$TCTI" --backend plan --eventlog "$WORK/boot/eventlog.$mode" \
                >/dev/null
            unset DOMB_HASH_THREADS
            stop_swtpm
            read -r e u s <"$WORK/boot/time"
            BOOT_WALL[$mode]=$(python3 -c "print(min(${BOOT_WALL[$mode]}, $e))")
            BOOT_CPU[$mode]=$(python3 -c "print(min(${BOOT_CPU[$mode]}, $u + $s))")
        done
    done
    echo "   load average after:  $(load_average)"
    cmp -s "$WORK/boot/eventlog.1" "$WORK/boot/eventlog.auto" && echo "   same event log from both paths" \
        || { echo "   EVENT LOGS DIFFER between the two paths" >&2; exit 1; }
    printf '   single-thread path: wall %6.3f s, CPU %6.3f s\n' "${BOOT_WALL[1]}" "${BOOT_CPU[1]}"
    printf '   every core (%s):    wall %6.3f s, CPU %6.3f s\n' "$CPUS" "${BOOT_WALL[auto]}" "${BOOT_CPU[auto]}"
    echo "   RATIO boot wall two cores / single-thread = $(ratio "${BOOT_WALL[auto]}" "${BOOT_WALL[1]}")   (target <= 0.8)"
    rm -rf "$WORK/boot"
fi
fi
