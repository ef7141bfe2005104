#!/usr/bin/env bash
# Secrets benchmark (issue 18): what releasing sealed secrets adds to `domb boot`, against
# the same boot without secrets in the same run (the baseline), and `domb unseal` against
# the documented tpm2-tools recipe (docs/secrets.md) for one secret.
#
#   benchmarks/secrets.sh                  # builds domb in release mode first
#   DOMB=/path/to/domb REPEAT=5 benchmarks/secrets.sh
#
# The demo system (five domains, images/) is built with a PCR-policy key; swtpm is fresh
# for every boot. The secrets of a launch share one GetCapability (active banks), one
# CreatePrimary (the ECC P-256 storage root key) and its flush, and one check of the signed
# policy (LoadExternal, VerifySignature, flush): 6 TPM commands. Each secret then costs 7:
# Load, StartAuthSession, PolicyPCR, PolicyAuthorize, Unseal, two flushes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DOMB:-}" ]]; then
    swift build -c release --product domb >/dev/null
    DOMB=.build/release/domb
fi
for tool in openssl python3 swtpm swtpm_ioctl tpm2_startup jq xxd /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-deps.sh; apt-get install time)" >&2; exit 1; }
done
REPEAT=${REPEAT:-3}
WORK=$(mktemp -d /var/tmp/domb-secrets-bench.XXXXXX)
SWTPM_PID=""
source benchmarks/lib.sh
trap 'stop_swtpm; rm -rf "$WORK"' EXIT
export TSS2_LOG=all+none

for key in release pcr; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$key.pem" 2>/dev/null
    openssl pkey -in "$WORK/$key.pem" -pubout -out "$WORK/$key.pub" 2>/dev/null
done
make -s -C images
"$DOMB" build examples/demo/launch.dts --key "$WORK/release.pem" --pcr-key "$WORK/pcr.pem" \
    -o "$WORK/demo.bundle" --no-progress >/dev/null
head -c 32 /dev/urandom >"$WORK/secret.bin"
# The tpm2-tools recipe, exactly as docs/secrets.md has it.
python3 - "$WORK/recipe.sh" <<'PY'
import sys
text = open("docs/secrets.md").read()
block = text[text.index("<!-- tpm2-tools-unseal:begin -->"):text.index("<!-- tpm2-tools-unseal:end -->")]
open(sys.argv[1], "w").write("\n".join(l for l in block.split("\n")[1:] if not l.startswith("```")))
PY

min() { python3 -c "print(min($1, $2))"; }
# boot N: wall seconds and TPM commands of one boot with N secrets into a fresh swtpm that
# sealed them (sealing not timed).
boot() {
    local n=$1 args=() i
    fresh_swtpm "$WORK/tpm"
    for i in $(seq 1 "$n"); do
        "$DOMB" seal --pcr-pubkey "$WORK/pcr.pub" "$WORK/secret.bin" -o "$WORK/s$i.sealed" --tpm "$TCTI" >/dev/null
        args+=(--secret "storage=$WORK/s$i.sealed,name=s$i")
    done
    swtpm_ioctl --tcp "127.0.0.1:$((${TCTI##*port=} + 1))" -i && tpm2_startup -c -T "$TCTI"
    rm -rf "$WORK/run"
    /usr/bin/time -f "%e" -o "$WORK/boot.time" "$DOMB" boot "$WORK/demo.bundle" --pubkey "$WORK/release.pub" \
        --tpm "$TCTI" --backend plan --eventlog "$WORK/eventlog.bin" --lock-dir "$WORK" \
        --secrets-dir "$WORK/run" "${args[@]}" --json >"$WORK/boot.json"
    BOOT_WALL=$(cat "$WORK/boot.time")
    BOOT_COMMANDS=$(python3 -c "import json; print(json.load(open('$WORK/boot.json'))['tpmCommands'])")
}

B0=999; B1=999; B4=999; C0=0; C1=0; C4=0; UNSEAL=999; TOOLS=999
for _ in $(seq "$REPEAT"); do
    boot 0; B0=$(min "$B0" "$BOOT_WALL"); C0=$BOOT_COMMANDS; stop_swtpm
    boot 1; B1=$(min "$B1" "$BOOT_WALL"); C1=$BOOT_COMMANDS
    # After the launch: domb unseal (one process) and the tpm2-tools recipe (17 processes).
    /usr/bin/time -f "%e" -o "$WORK/unseal.time" "$DOMB" unseal "$WORK/s1.sealed" --bundle "$WORK/demo.bundle" \
        -o - --tpm "$TCTI" >/dev/null
    UNSEAL=$(min "$UNSEAL" "$(cat "$WORK/unseal.time")")
    rm -rf "$WORK/recipe" && mkdir "$WORK/recipe"
    (cd "$WORK/recipe" && BUNDLE="$WORK/demo.bundle" SEALED="$WORK/s1.sealed" TPM2TOOLS_TCTI="$TCTI" \
        /usr/bin/time -f "%e" -o "$WORK/tools.time" bash "$WORK/recipe.sh")
    cmp -s "$WORK/recipe/secret.out" "$WORK/secret.bin" || { echo "the tpm2-tools recipe did not unseal the secret" >&2; exit 1; }
    TOOLS=$(min "$TOOLS" "$(cat "$WORK/tools.time")")
    stop_swtpm
    boot 4; B4=$(min "$B4" "$BOOT_WALL"); C4=$BOOT_COMMANDS; stop_swtpm
done
echo "== domb boot of the demo system (5 domains), plan backend, fresh swtpm, best of $REPEAT"
printf '   baseline: no secret        wall %6.3f s, %3d TPM commands\n' "$B0" "$C0"
printf '   1 secret (file)            wall %6.3f s, %3d TPM commands (+%d)\n' "$B1" "$C1" $((C1 - C0))
printf '   4 secrets (file)           wall %6.3f s, %3d TPM commands (+%d: %d more per secret after the first)\n' "$B4" "$C4" $((C4 - C0)) $(((C4 - C1) / 3))
echo "   RATIO boot with 1 secret / baseline  = $(python3 -c "print(f'{$B1 / $B0:.3f}')")"
echo "   RATIO boot with 4 secrets / baseline = $(python3 -c "print(f'{$B4 / $B0:.3f}')")"
printf '   after the launch: domb unseal %6.3f s; the tpm2-tools recipe %6.3f s\n' "$UNSEAL" "$TOOLS"
echo "   RATIO domb unseal / tpm2-tools recipe = $(python3 -c "print(f'{$UNSEAL / $TOOLS:.3f}')")"
echo "   load average: $(load_average)"
