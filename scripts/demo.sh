#!/bin/bash
# The domb demo on an embedded default: swtpm as the TPM, the plan backend off Xen.
# Installs what it needs, builds domb and the test guests, makes a throw-away CA and
# signer, builds and signs the five-domain bundle of examples/demo, boots it into a swtpm
# it starts itself, verifies the log against the TPM, quotes, attests, shows that a
# tampered bundle is refused, and stops swtpm.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Building domb and the test guests"
if [ -z "${DOMB:-}" ]; then   # DOMB=path/to/domb uses a given binary
  swift build -c release --product domb 2>&1 | grep -E "error:|Build complete" || true
  DOMB=$(swift build -c release --show-bin-path)/domb
fi
make -s -C images >/dev/null

WORK=$(mktemp -d /tmp/domb-demo.XXXXXX)
SWTPM=""
cleanup() {
  [ -n "$SWTPM" ] && { kill -9 "$SWTPM" 2>/dev/null || true; wait "$SWTPM" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

say "A throw-away CA and a code-signing certificate for the bundle"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
  -out "$WORK/ca.pem" -subj "/CN=demo launch CA" -days 30 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/signer.key" \
  -out "$WORK/signer.csr" -subj "/CN=demo release signer" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' > "$WORK/ext.cnf"
openssl x509 -req -in "$WORK/signer.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -out "$WORK/signer.pem" -days 30 -extfile "$WORK/ext.cnf" 2>/dev/null
mkdir -p "$WORK/trust" && cp "$WORK/ca.pem" "$WORK/trust/"
echo "CA $WORK/ca.pem, signer $WORK/signer.pem"

say "The launch description: examples/demo/launch.dts"
"$DOMB" config check --images examples/demo/launch.dts

say "Build and sign the bundle (reproducible: SOURCE_DATE_EPOCH=1700000000)"
BANKS=sha1,sha256,sha384,sha512
SOURCE_DATE_EPOCH=1700000000 "$DOMB" build examples/demo/launch.dts --key "$WORK/signer.key" \
  --cert "$WORK/signer.pem" --generation 7 --banks "$BANKS" -o "$WORK/launch.bundle" --no-progress
"$DOMB" bundle verify "$WORK/launch.bundle" --trust "$WORK/trust" --min-generation 7

say "Verify it with OpenSSL alone (no domb)"
mkdir -p "$WORK/x" && tar -xf "$WORK/launch.bundle" -C "$WORK/x"
openssl cms -verify -binary -inform DER -in "$WORK/x/manifest.sig" -content "$WORK/x/manifest.json" \
  -CAfile "$WORK/ca.pem" -purpose any -out /dev/null
echo "modules/web/kernel sha256 $(sha256sum < "$WORK/x/modules/web/kernel" | cut -c1-16)…, in the manifest: $(grep -o '"modules/web/kernel"[^}]*"sha256":"[0-9a-f]\{16\}' "$WORK/x/manifest.json" | grep -o '[0-9a-f]\{16\}$')…"

say "A fresh software TPM (swtpm), as firmware leaves it"
PORT=$(( (RANDOM % 20000 + 20000) & ~1 ))
mkdir -p "$WORK/tpm"
swtpm socket --tpm2 --tpmstate dir="$WORK/tpm" \
  --server type=tcp,port=$PORT,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((PORT+1)),bindaddr=127.0.0.1 \
  --flags not-need-init,startup-clear &
SWTPM=$!
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
"$DOMB" tpm info

say "A tampered copy of the bundle is refused before anything is measured"
cp "$WORK/launch.bundle" "$WORK/tampered.bundle"
python3 - "$WORK/tampered.bundle" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
i = b.find(b'modules/web/kernel') + 512 + 100   # a byte inside the member's data
b[i] ^= 1; open(p, 'wb').write(b)
PY
if "$DOMB" boot "$WORK/tampered.bundle" --trust "$WORK/trust" --backend plan --eventlog "$WORK/refused.log"; then
  echo "FAIL: the tampered bundle was launched"; exit 1
fi
"$DOMB" tpm pcrread --pcrs 12,13 --banks sha256

say "domb boot: verify, measure into every bank, build paused, Xenstore, start (plan backend)"
"$DOMB" boot "$WORK/launch.bundle" --trust "$WORK/trust" --min-generation 7 --backend plan \
  --eventlog "$WORK/eventlog.bin"

say "The log against the TPM, and against the bundle's prediction"
"$DOMB" log verify "$WORK/eventlog.bin" --tpm "$TPM2TOOLS_TCTI"
cmp "$WORK/eventlog.bin" "$WORK/x/eventlog.predicted" && echo "the event log is byte-identical to the bundle's predicted log"
tpm2_eventlog "$WORK/eventlog.bin" >/dev/null && echo "tpm2_eventlog reads it without a warning"

say "Remote attestation: an AK, a quote over PCRs 12 and 13 with the log, the verifier"
"$DOMB" ak create --tpm "$TPM2TOOLS_TCTI" -o "$WORK/ak.pub.pem"
NONCE=$(openssl rand -hex 20)
"$DOMB" quote --tpm "$TPM2TOOLS_TCTI" --nonce "$NONCE" --pcrs sha256:12,13 --eventlog "$WORK/eventlog.bin" \
  -o "$WORK/quote.json"
"$DOMB" attest verify "$WORK/quote.json" --ak-pub "$WORK/ak.pub.pem" --nonce "$NONCE" \
  --bundle "$WORK/launch.bundle" --trust "$WORK/trust" --state "$WORK/verifier-state.json"

say "Done. swtpm stopped, nothing left running; the demo's files are removed."
