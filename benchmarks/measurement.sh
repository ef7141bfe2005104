#!/usr/bin/env bash
# Measurement benchmarks (issue 5). One run each; prints ratios against the named baselines.
#
#   benchmarks/measurement.sh            # builds domb in release mode first; every section
#   benchmarks/measurement.sh 5          # only the sections named (digits 1-5, e.g. 45)
#   DOMB=/path/to/domb benchmarks/measurement.sh
#
# Needs: openssl, tpm2_eventlog (tpm2-tools), swtpm, python3, GNU time (/usr/bin/time).
# Timings are CPU time (user + system, from GNU time or getrusage), as `openssl speed`
# counts time, so that other load on a shared machine does not skew the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DOMB:-}" ]]; then
    swift build -c release --product domb >/dev/null
    DOMB=.build/release/domb
fi
for tool in openssl tpm2_eventlog swtpm python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install openssl tpm2-tools swtpm python3 time)" >&2; exit 1; }
done
WORK=$(mktemp -d /var/tmp/domb-bench.XXXXXX)
SWTPM_PID=""
cleanup() {
    [[ -n "$SWTPM_PID" ]] && kill "$SWTPM_PID" 2>/dev/null && wait "$SWTPM_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
SECTIONS=${1:-12345}
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
cpu() { # cpu SECONDS-FILE COMMAND...: runs COMMAND, stores user+sys seconds
    local out=$1; shift
    /usr/bin/time -f "%U %S %M" -o "$out.time" "$@" >/dev/null
    awk '{printf "%.3f\n", $1 + $2}' "$out.time" >"$out"
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
echo "== 2. four banks in one pass vs four single-bank passes (hashing CPU time)"
data
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
fi
rm -f "$DATA"

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
cpu "$WORK/t.tools" tpm2_eventlog "$WORK/100k.log"
cpu "$WORK/t.domb" "$DOMB" log replay "$WORK/100k.log"
TT=$(cat "$WORK/t.tools"); TD=$(cat "$WORK/t.domb")
echo "   tpm2_eventlog: ${TT}s CPU   domb log replay: ${TD}s CPU"
# PCR 12 must agree (PCR 0 differs by design: tpm2-tools 5.4 ignores the H-CRTM start value).
tpm2_eventlog "$WORK/100k.log" 2>/dev/null | sed -n '/^pcrs:/,$p' | grep -i ' 12 ' | awk '{print tolower($3)}' >"$WORK/a"
"$DOMB" log replay "$WORK/100k.log" 2>"$WORK/quirks" | grep ' 12: ' | awk '{print tolower($2)}' >"$WORK/b"
[[ $(wc -l <"$WORK/b") -eq 2 ]] && cmp -s "$WORK/a" "$WORK/b" && echo "   same PCR 12 values in both banks" || echo "   PCR VALUES DIFFER"
sed 's/^[^:]*: /   domb: /' "$WORK/quirks"
echo "   RATIO tpm2_eventlog / domb = $(ratio "$TT" "$TD")   (target >= 10)"
fi
