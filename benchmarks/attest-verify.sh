#!/bin/bash
# Quote verification throughput on one core: `domb attest verify` (in-process loop over one
# ECDSA P-256 quote with a 64-event domb log: signature, magic/type, nonce, selection, PCR
# digest, clock checks, log parse, replay per bank, record and structure checks) against the
# baseline of one `tpm2_checkquote -e LOG` process per quote (what a shell verifier does).
# Both run pinned to CPU 0. Throughput is given per wall-clock second and per CPU second;
# on a shared machine the CPU figure is the stable one.
#
# Usage: benchmarks/attest-verify.sh [ITERATIONS] [CHECKQUOTE_CALLS]
# Builds domb in release mode, starts its own swtpm on a free loopback port, stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-20000}
calls=${2:-200}

swift build -c release --product domb >/dev/null
domb=$(swift build -c release --show-bin-path)/domb

work=$(mktemp -d /tmp/domb-bench-attest.XXXXXX)
swtpm_pid=""
cleanup() {
  if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null || true; wait "$swtpm_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
mkdir "$work/tpm"
swtpm socket --tpm2 --tpmstate dir="$work/tpm" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
swtpm_pid=$!
tcti="swtpm:host=127.0.0.1,port=$port"
for _ in $(seq 50); do "$domb" tpm info --tpm "$tcti" >/dev/null 2>&1 && break; sleep 0.1; done

export TSS2_LOG=all+none
"$domb" ak create --tpm "$tcti" --ecc -o "$work/ak.pub.pem" >/dev/null
# A 64-event launch log: 30 images on PCR 13, 32 inline strings on PCR 12, two separators.
mkdir "$work/images"
for i in $(seq 30); do head -c 4096 /dev/urandom >"$work/images/module$i"; done
"$domb" measure --tpm "$tcti" --log "$work/launch.log" --domain dom1 --role module "$work"/images/module* >/dev/null
strings=(); for i in $(seq 32); do strings+=(--string "option$i=value$i"); done
"$domb" measure --tpm "$tcti" --log "$work/launch.log" "${strings[@]}" >/dev/null
"$domb" measure --tpm "$tcti" --log "$work/launch.log" --close >/dev/null
nonce=$(openssl rand -hex 20)
"$domb" quote --tpm "$tcti" --nonce "$nonce" --pcrs sha256:12,13 --eventlog "$work/launch.log" -o "$work/quote.json" >/dev/null
kill "$swtpm_pid"; wait "$swtpm_pid" 2>/dev/null || true; swtpm_pid=""

events=$(tpm2_eventlog "$work/launch.log" 2>/dev/null | grep -c 'EventNum:' || true)
echo "log: $((events - 1)) events after the Spec ID header"
echo "domb attest verify: $iterations verifications of one ECDSA P-256 quote over sha256:12,13 with that log"
line=$(taskset -c 0 "$domb" attest verify "$work/quote.json" --ak-pub "$work/ak.pub.pem" --nonce "$nonce" \
  --benchmark-iterations "$iterations")
echo "  $line"
domb_wall=$(echo "$line" | sed -E 's/.* ([0-9]+) quotes\/s wall.*/\1/')
domb_cpu=$(echo "$line" | sed -E 's/.* ([0-9]+) quotes\/s per CPU second.*/\1/')

echo "tpm2_checkquote -e: $calls processes, one per quote"
TIMEFORMAT='%R %U %S'
times=$( { time (for _ in $(seq "$calls"); do
  taskset -c 0 tpm2_checkquote -u "$work/ak.pub.pem" -m "$work/quote.msg" -s "$work/quote.sig" -f "$work/quote.pcrs" \
    -l sha256:12,13 -g sha256 -q "$nonce" -e "$work/launch.log" >/dev/null
done) ; } 2>&1 )
read -r wall user sys <<<"$times"
read -r tq_wall tq_cpu < <(python3 -c "print(f'{$calls / $wall:.0f} {$calls / ($user + $sys):.0f}')")
echo "  verified $calls quotes in ${wall} s wall, $(python3 -c "print(f'{$user + $sys:.3f}')") s CPU: $tq_wall quotes/s wall, $tq_cpu quotes/s per CPU second"

python3 -c "print(f'ratio (per CPU second): domb attest verify = {$domb_cpu / $tq_cpu:.0f}x one tpm2_checkquote call per quote')"
python3 -c "print(f'ratio (wall clock):     domb attest verify = {$domb_wall / $tq_wall:.0f}x one tpm2_checkquote call per quote')"
