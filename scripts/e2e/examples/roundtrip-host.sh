#!/bin/bash
# Example host check (docs/e2e.md): runs after QEMU exits with the run folder as $1; the files
# dom0 sent are in $E2E_FILES, the domb that went into dom0 is $DOMB. Exit status = result,
# last output line = detail.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
cmp "$repo/README.md" "$E2E_FILES/example-readme.txt"
echo "README.md came back from dom0 unchanged ($(wc -c < "$E2E_FILES/example-readme.txt") bytes)"
