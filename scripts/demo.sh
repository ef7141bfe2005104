#!/bin/bash
# The domb demo on an embedded default: swtpm as the TPM, the plan backend off Xen.
# Installs what it needs, builds, starts its own swtpm, runs the pipeline, stops swtpm.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release --product domb >/dev/null
DOMB=$(swift build -c release --show-bin-path)/domb
WORK=$(mktemp -d /tmp/domb-demo.XXXXXX)
PORT=$(( (RANDOM % 20000 + 20000) & ~1 ))
swtpm socket --tpm2 --tpmstate dir="$WORK" \
  --server type=tcp,port=$PORT,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((PORT+1)),bindaddr=127.0.0.1 \
  --flags not-need-init,startup-clear &
SWTPM=$!
cleanup() { kill -9 $SWTPM 2>/dev/null || true; wait $SWTPM 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "A fresh software TPM (swtpm) at $TPM2TOOLS_TCTI"
"$DOMB" tpm info
say "Its launch PCRs before anything is measured (12: configuration, 13: images)"
"$DOMB" tpm pcrread --pcrs 12,13 --banks sha256
say "Done: swtpm stopped, nothing left running."
