#!/bin/bash
# domb agent under Keylime: quotes served per second on swtpm (PCRs 12, 13 and the PCR 16
# key binding, one keep-alive client) against the baseline of one tpm2_quote process per
# quote, measured in the same run; the time from `keylime_tenant -c add` to the verifier's
# first attested state, beside Keylime's default quote_interval (what the verifier asks of
# each agent). Runs the whole Keylime scenario (scripts/keylime/scenario.sh) with a release
# domb, then the measurements.
#
# Usage: benchmarks/keylime-agent.sh [QUOTES]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product domb >/dev/null
exec ./scripts/keylime/scenario.sh --domb "$(swift build -c release --show-bin-path)/domb" --benchmark "${1:-200}"
