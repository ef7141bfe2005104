#!/bin/bash
# Host half of the xl.cfg oracle (scripts/e2e/xlcfg/dom0.sh; docs/e2e.md): unpacks what dom0
# sent back and writes RUN_DIR/xlcfg-report.txt — one line per corpus file (its verdict), then
# every field that differs, every accepted difference with its reason, and libxl's disk backend
# choices against domb's. Exit status: 0 when every file matches xl or is refused naming its
# key and every backend choice agrees. Usage: host-report.sh RUN_DIR (run.sh --host-check).
set -euo pipefail
RUN=$1
FILES=${E2E_FILES:-$RUN/files}
ARCHIVE=$FILES/xlcfg-oracle.tar.gz
[ -f "$ARCHIVE" ] || { echo "no xlcfg-oracle.tar.gz from dom0"; exit 1; }
W=$RUN/xlcfg
rm -rf "$W"; mkdir -p "$W"
tar -xzf "$ARCHIVE" -C "$W"
O=$W/xlcfg
BACKENDS=$FILES/xlcfg-backends.txt
REPORT=$RUN/xlcfg-report.txt
{
  echo "xl.cfg oracle: xl -N create (Xen $(grep -m1 -o 'Xen version [0-9.]*' "$RUN/serial.log" | cut -d' ' -f3 || echo 4.17)) against domb config import-xl --libxl-json"
  echo
  echo "== verdicts ($(wc -l < "$O/verdicts.txt") files)"
  cut -d' ' -f1 "$O/verdicts.txt" | sort | uniq -c
  echo
  sort "$O/verdicts.txt"
  echo
  echo "== fields that differ"
  for f in "$O"/files/*.compare; do
    grep -q '^differs: ' "$f" && { echo "-- $(basename "$f" .compare)"; grep '^differs: ' "$f"; }
  done
  echo
  echo "== accepted differences (domb's choice, with the reason)"
  for f in "$O"/files/*.compare; do
    grep -q '^accepted: ' "$f" && { echo "-- $(basename "$f" .compare)"; grep '^accepted: ' "$f"; }
  done
  echo
  echo "== domb's refusals (the first line of each message), and xl's where it refused too"
  for f in "$O"/files/*.compare; do
    b=$(basename "$f" .compare)
    grep -q '^refused: ' "$f" || continue
    echo "$b: domb: $(grep -m1 '^refused: ' "$f" | cut -c10-)"
    [ -f "$O/xl/$b.json" ] || echo "$b: xl:   $(grep -v '^Parsing config' "$O/files/$b.xl.err" | head -n1)"
  done
  echo
  echo "== disk backend for the deprecated prefixes: libxl's choice (xl -vvv create) and domb's plan"
  cat "$BACKENDS" 2>/dev/null || echo "(dom0 sent no xlcfg-backends.txt)"
} > "$REPORT" 2>&1 || true
matched=$(grep -c '^MATCH ' "$O/verdicts.txt" || true)
refused=$(grep -c '^REFUSED ' "$O/verdicts.txt" || true)
total=$(wc -l < "$O/verdicts.txt")
bad=$((total - matched - refused))
backend_bad=$( [ -f "$BACKENDS" ] && awk '{ split($2, a, "="); split($3, b, "="); if (a[2] == "none" || a[2] != b[2]) n++ } END { print n + 0 }' "$BACKENDS" || echo missing)
echo "xlcfg oracle: $total files, $matched match xl, $refused refused naming the key, $bad otherwise; backend choices differing: $backend_bad (report: $REPORT)"
[ "$bad" = 0 ] && [ "$backend_bad" = 0 ]
