#!/usr/bin/env bash
# Scale benchmark (issue 20): the cost of every stage per domain, from small systems to
# large ones, against the same stage at N = 64 in the same run.
#
#   benchmarks/scale.sh                 # N = 16 64 256 1024; builds domb in release mode first
#   DOMB=/path/to/domb benchmarks/scale.sh 64 1024
#   IR=1 benchmarks/scale.sh 16 64 256  # also instruction counts (callgrind; slow)
#
# Each system has N PV domains, each with a kernel (the same file for all), a console, a
# vif and a vbd (benchmarks/scale-system.py). For each N: config check --images, xenstore
# plan, build, bundle verify, predict and boot --backend plan into a fresh swtpm, each
# must succeed. The table gives CPU time (user + system: other engineers' load on a shared
# machine skews wall time far more), wall time and peak RSS per command, the CPU time per
# domain, and its RATIO to the same command at N = 64. Targets: RATIO <= 2 at N = 1024 for
# every command (linear cost; a quadratic step shows as RATIO ~ 16); peak RSS <= 256 MiB.
# With IR=1 the instruction count per domain (callgrind: stable under load) is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DOMB:-}" ]]; then
    swift build -c release --product domb >/dev/null
    DOMB=.build/release/domb
fi
DOMB=$(realpath "$DOMB")
for tool in openssl python3 swtpm dtc /usr/bin/time make; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool (apt-get install openssl python3 swtpm device-tree-compiler time make)" >&2; exit 1; }
done
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(16 64 256 1024)
BASE=64
BANKS=sha1,sha256,sha384,sha512  # swtpm's active banks: the boot log must equal the prediction
WORK=$(mktemp -d /var/tmp/domb-scale-bench.XXXXXX)
SWTPM_PID=""
source benchmarks/lib.sh
trap 'stop_swtpm; rm -rf "$WORK"' EXIT

make -s -C images OUT="$WORK/guests"
KERNEL=$WORK/guests/pv-kernel.elf
openssl genpkey -algorithm ed25519 -out "$WORK/signer.key" 2>/dev/null
openssl pkey -in "$WORK/signer.key" -pubout -out "$WORK/signer.pub" 2>/dev/null

COMMANDS=(check plan build verify predict boot)
declare -A CPU WALL RSS IR
run() { # run N NAME ARGS...: times `domb ARGS` and records CPU, wall and RSS
    local n=$1 name=$2; shift 2
    if ! /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$DOMB" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "N=$n: domb $* failed:" >&2; tail -5 "$WORK/$name.err" >&2; exit 1
    fi
    read -r e u s m <"$WORK/time"
    CPU[$n,$name]=$(python3 -c "print(f'{$u + $s:.3f}')"); WALL[$n,$name]=$e; RSS[$n,$name]=$m
}
ir() { # ir N NAME ARGS...: instruction count of `domb ARGS` (a .dtb instead of the .dts)
    local n=$1 name=$2; shift 2
    IR[$n,$name]=$(benchmarks/callgrind.sh "$WORK/cg.$name" "$DOMB" "$@")
}

echo "load average before: $(load_average)"
for n in "${SIZES[@]}"; do
    dir=$WORK/n$n; mkdir -p "$dir"
    python3 benchmarks/scale-system.py "$n" "$KERNEL" >"$dir/system.dts"
    dtc -q -I dts -O dtb -o "$dir/system.dtb" "$dir/system.dts"
    cat "$KERNEL" >/dev/null
    run "$n" check config check --images "$dir/system.dts"
    run "$n" plan xenstore plan "$dir/system.dts"
    run "$n" build build "$dir/system.dts" --key "$WORK/signer.key" --banks "$BANKS" -o "$dir/system.bundle" --no-progress
    run "$n" verify bundle verify "$dir/system.bundle" --pubkey "$WORK/signer.pub"
    run "$n" predict predict "$dir/system.bundle" --pubkey "$WORK/signer.pub"
    fresh_swtpm "$WORK/tpm"
    run "$n" boot boot "$dir/system.bundle" --pubkey "$WORK/signer.pub" --tpm "$TCTI" --backend plan \
        --eventlog "$dir/eventlog.bin" --json
    stop_swtpm
    python3 -c "import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if r['matchesPrediction'] else 1)" \
        "$WORK/boot.out" || { echo "N=$n: the boot's event log differs from the bundle's prediction" >&2; exit 1; }
    if [[ -n "${IR:-}" ]]; then
        ir "$n" check config check --images "$dir/system.dtb"
        ir "$n" plan xenstore plan "$dir/system.dtb"
        ir "$n" build build "$dir/system.dtb" --key "$WORK/signer.key" --banks "$BANKS" -o "$dir/ir.bundle" --no-progress
        ir "$n" verify bundle verify "$dir/system.bundle" --pubkey "$WORK/signer.pub"
        ir "$n" predict predict "$dir/system.bundle" --pubkey "$WORK/signer.pub"
        fresh_swtpm "$WORK/tpm"
        ir "$n" boot boot "$dir/system.bundle" --pubkey "$WORK/signer.pub" --tpm "$TCTI" --backend plan
        stop_swtpm
    fi
    printf 'N=%-5s bundle %s MiB, %s domains booted\n' "$n" "$(($(stat -c %s "$dir/system.bundle") >> 20))" "$n"
    rm -f "$dir/system.bundle" "$dir/ir.bundle"
done
echo "load average after:  $(load_average)"

has_base=""; for n in "${SIZES[@]}"; do [[ $n == "$BASE" ]] && has_base=1; done
echo
echo "== per command: CPU s (user+sys), wall s, peak RSS MiB, CPU ms per domain, RATIO per domain to N=$BASE"
printf '%-8s %6s %9s %9s %8s %12s %8s' command N cpu-s wall-s rss-MiB cpu-ms/dom ratio
[[ -n "${IR:-}" ]] && printf ' %14s %8s' Ir/domain ratio
echo
for c in "${COMMANDS[@]}"; do
    for n in "${SIZES[@]}"; do
        per=$(python3 -c "print(${CPU[$n,$c]} * 1000 / $n)")
        ratio="-"
        [[ -n $has_base ]] && ratio=$(python3 -c "b = ${CPU[$BASE,$c]} / $BASE; print(f'{($per / 1000) / b:.2f}' if b > 0 else '-')")
        printf '%-8s %6s %9s %9s %8s %12.3f %8s' "$c" "$n" "${CPU[$n,$c]}" "${WALL[$n,$c]}" "$((RSS[$n,$c] / 1024))" "$per" "$ratio"
        if [[ -n "${IR:-}" ]]; then
            irper=$((IR[$n,$c] / n)); irratio="-"
            [[ -n $has_base ]] && irratio=$(python3 -c "print(f'{$irper / (${IR[$BASE,$c]} / $BASE):.2f}')")
            printf ' %14s %8s' "$irper" "$irratio"
        fi
        echo
    done
done
LAST=${SIZES[-1]}
MAXRSS=0; for c in "${COMMANDS[@]}"; do (( RSS[$LAST,$c] > MAXRSS )) && MAXRSS=${RSS[$LAST,$c]}; done
echo
echo "peak RSS at N=$LAST: $((MAXRSS / 1024)) MiB   (target <= 256 MiB)"
if [[ -n $has_base ]]; then
    WORST=$(for c in "${COMMANDS[@]}"; do python3 -c "print(f'{(${CPU[$LAST,$c]} / $LAST) / (${CPU[$BASE,$c]} / $BASE):.2f} $c')"; done | sort -rn | head -1)
    echo "RATIO worst per-domain CPU at N=$LAST / N=$BASE: $WORST   (target <= 2)"
fi
