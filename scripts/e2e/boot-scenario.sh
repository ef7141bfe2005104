#!/bin/bash
# `make e2e-boot`: `domb boot --backend libxl` inside dom0 of real Xen 4.17 under QEMU, with
# the QEMU TPM TIS device (host swtpm) as the TPM. See docs/e2e.md, "The domb boot scenario".
#
#   scripts/e2e/boot-scenario.sh [run.sh options, e.g. --timeout 900 or --domb PATH]
#
# On the host: a throw-away CA and code-signing certificate, the signed bundle of
# scripts/e2e/boot/launch.dts (a PV, a PVH and a PV guest with a vbd and a vif on dom0, all
# the test guests of images/), a copy with one module byte flipped, the bundle's Xenstore
# plan (and its e2e-pv and e2e-pvh domains alone), those two as xl.cfg, a nonce. In dom0
# (scripts/e2e/boot/dom0.sh): the tampered bundle refused (no domain, PCRs 12/13 at reset),
# xl's Xenstore for e2e-pv and e2e-pvh against domb's plan, `domb boot`, each guest's console line,
# `xl list`, Xenstore against the plan, `domb log verify` against the TPM, an AK and a quote.
# On the host again (scripts/e2e/boot/host-attest.sh): `domb attest verify` of that quote
# against the bundle. In the same boot, the xl.cfg oracle (scripts/e2e/xlcfg/): every file of
# the corpus through `xl -N create` and `domb config import-xl --libxl-json`, compared
# field by field, and libxl's disk backend choice for the deprecated prefixes against domb's;
# the host writes RUN/xlcfg-report.txt. Exit status: run.sh's (non-zero on any failed check).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
E2E_DIR=${E2E_DIR:-$REPO/.e2e}
DOMB=""
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --domb) DOMB=$(realpath "$2"); shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) ARGS+=("$1"); shift;;
  esac
done
t0=$(date +%s.%N)
if [ -z "$DOMB" ]; then
  (cd "$REPO" && swift build -c release --product domb 2>&1 | tail -n 1)
  DOMB=$(cd "$REPO" && swift build -c release --show-bin-path)/domb
fi
make -s -C "$REPO/images" >/dev/null

W=$E2E_DIR/boot-work
rm -rf "$W"; mkdir -p "$W/payload/trust"
P=$W/payload
# A throw-away CA and a code-signing certificate (as scripts/demo.sh).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
  -out "$W/ca.pem" -subj "/CN=e2e launch CA" -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/signer.key" \
  -out "$W/signer.csr" -subj "/CN=e2e release signer" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' > "$W/ext.cnf"
openssl x509 -req -in "$W/signer.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -out "$W/signer.pem" -days 2 -extfile "$W/ext.cnf" 2>/dev/null
cp "$W/ca.pem" "$P/trust/"

"$DOMB" build "$HERE/boot/launch.dts" --key "$W/signer.key" --cert "$W/signer.pem" --generation 1 \
  --banks sha1,sha256,sha384,sha512 -o "$P/bundle.dombb" --no-progress
"$DOMB" bundle verify "$P/bundle.dombb" --trust "$P/trust" >/dev/null
# One byte flipped inside the data of e2e-pvh's kernel (the manifest and signature intact).
cp "$P/bundle.dombb" "$P/tampered.dombb"
python3 - "$P/tampered.dombb" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
i = b.find(b'modules/e2e-pvh/kernel')
if i < 0: sys.exit('no modules/e2e-pvh/kernel member in the bundle')
b[i + 512 + 100] ^= 1   # 512: the tar header; 100: a byte of the member's data
open(p, 'wb').write(b)
PY
if "$DOMB" bundle verify "$P/tampered.dombb" --trust "$P/trust" >/dev/null 2>&1; then
  echo "e2e-boot: the tampered bundle verifies on the host" >&2; exit 2
fi
# The signed Xenstore plan, and its e2e-pv and e2e-pvh domains alone (for the xl cross-check).
tar -xOf "$P/bundle.dombb" xenstore-plan.json > "$P/plan.json"
for d in e2e-pv e2e-pvh; do
  python3 - "$P/plan.json" "$P/plan-$d.json" "$d" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
plan['domains'] = [d for d in plan['domains'] if d['name'] == sys.argv[3]]
assert len(plan['domains']) == 1, 'no %s in the plan' % sys.argv[3]
json.dump(plan, open(sys.argv[2], 'w'))
PY
done
# The same domains as xl.cfg, their kernels at the paths run.sh gives the test guests in dom0.
for t in pv:32 pvh:48; do
  cat > "$P/e2e-${t%:*}.cfg" <<CFG
name = "e2e-${t%:*}"
type = "${t%:*}"
kernel = "/e2e/images/${t%:*}-kernel.elf"
cmdline = "console=hvc0"
memory = ${t#*:}
vcpus = 1
on_poweroff = "preserve"
on_crash = "preserve"
CFG
done
openssl rand -hex 20 > "$P/nonce"
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "e2e-boot: host preparation (domb build, bundle, plan) %.1f s\n", b - a }'

export E2E_BOOT_WORK=$W
# The xl.cfg oracle adds a few minutes of dom0 time (two programs per corpus file): a longer
# default limit (a --timeout given here comes later and wins).
exec "$HERE/run.sh" --no-builtin --domb "$DOMB" --timeout 1800 --payload "$P=boot" \
  --payload "$REPO/Tests/DombXLConfigTests/Corpus=xlcfg" \
  --fragment "$HERE/boot/dom0.sh" --fragment "$HERE/xlcfg/dom0.sh" \
  --host-check "$HERE/boot/host-attest.sh" --host-check "$HERE/xlcfg/host-report.sh" ${ARGS[@]+"${ARGS[@]}"}
