#!/bin/bash
# Host half of the `domb boot` scenario: the quote made in dom0 after the launch verifies
# against the signed bundle (its predicted PCRs) with `domb attest verify`, with the AK
# public key and event log dom0 sent back. $E2E_BOOT_WORK is the scenario's work folder.
set -euo pipefail
w=$E2E_BOOT_WORK
for f in boot-quote.json boot-ak.pub.pem boot-eventlog.bin; do
  [ -s "$E2E_FILES/$f" ] || { echo "dom0 sent no $f"; exit 1; }
done
# The event log domb wrote in dom0 is the one the bundle predicted (same banks).
tar -xOf "$w/payload/bundle.dombb" eventlog.predicted > "$w/eventlog.predicted"
if cmp -s "$w/eventlog.predicted" "$E2E_FILES/boot-eventlog.bin"; then
  echo "dom0's event log is byte-identical to the bundle's eventlog.predicted"
else
  # The bundle's banks are the four swtpm activates; a difference is a defect.
  echo "dom0's event log differs from the bundle's eventlog.predicted"; exit 1
fi
# Against the signed bundle: its predicted PCRs are the golden values, its predicted log the
# golden events (signature checked against the trust anchor); the clock state must be new.
rm -f "$w/verifier-state.json"
"$DOMB" attest verify "$E2E_FILES/boot-quote.json" --ak-pub "$E2E_FILES/boot-ak.pub.pem" \
  --nonce "$(cat "$w/payload/nonce")" --bundle "$w/payload/bundle.dombb" --trust "$w/payload/trust" \
  --pcrs sha256:12,13 --require-eventlog --state "$w/verifier-state.json"
