#!/usr/bin/env bash
# Instruction counts of one domb command under valgrind's callgrind: stable on a shared,
# noisy machine where wall and CPU time are not.
#
#   benchmarks/callgrind.sh OUT.callgrind domb ARGS...   # prints the total instructions (Ir)
#   callgrind_annotate --inclusive=yes OUT.callgrind | less
#
# Needs valgrind and gcc. Two things keep valgrind 3.19 working with domb: a preloaded
# sigsuspend wrapper (valgrind-sigsuspend.c says why), and a launch description given as a
# .dtb, because under valgrind Foundation's Process cannot start dtc (EBADF).
set -euo pipefail
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
for tool in valgrind gcc; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install valgrind gcc)" >&2; exit 1; }
done
shim=${TMPDIR:-/tmp}/domb-valgrind-sigsuspend.$$.so
trap 'rm -f "$shim"' EXIT
gcc -shared -fPIC -O2 -o "$shim" "$here/valgrind-sigsuspend.c" -ldl
LD_PRELOAD=$shim valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$out.log" || {
    echo "callgrind failed: $(tail -3 "$out.log")" >&2; exit 1; }
awk '/I *refs:/ {gsub(",", "", $NF); print $NF}' "$out.log"
