#!/bin/bash
# `make e2e-boot`: `domb boot --backend libxl` inside dom0 of real Xen 4.17 under QEMU, with
# the QEMU TPM TIS device (host swtpm) as the TPM. See docs/e2e.md, "The domb boot scenario".
#
#   scripts/e2e/boot-scenario.sh [run.sh options, e.g. --timeout 900 or --domb PATH]
#
# On the host: a throw-away CA and code-signing certificate, the Linux guests
# (scripts/e2e/linux/build.sh), the signed bundle of scripts/e2e/boot/launch.dts (the PV and
# PVH test guests of images/, a Linux network driver domain, a Linux guest with a vbd on a
# dom0 file and one with a vif on the driver domain), which byte of it to flip, a
# one-domain bundle whose vbd nobody serves, the bundle's Xenstore plan (and parts of it),
# the domains as xl.cfg, a nonce. In dom0 (scripts/e2e/boot/dom0.sh, devices.sh): the
# tampered bundle refused (no domain, PCRs 12/13 at reset), the unserved vbd refused naming
# it, xl's Xenstore for the same domains against domb's plan and xl's time to connected
# devices, `domb boot --supervise`, the devices connected, the disk read and the ping, `xl
# console`, `xl list`, Xenstore against the plan, `domb log verify` against the TPM, an AK
# and a quote, then xl reboot, a crash and xl shutdown carried out by the supervisor.
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
# The launch description with what it names beside it: images/ and payload/linux/ (the
# Linux guests go to dom0 too, for the xl path).
KVER=$("$HERE/fetch.sh" "$E2E_DIR/cache")
"$HERE/linux/build.sh" "$E2E_DIR/cache" "$KVER" "$P/linux"
mkdir -p "$W/images"; cp "$REPO"/images/out/*.elf "$REPO"/images/out/ramdisk.cpio* "$W/images/"
cp "$HERE/boot/launch.dts" "$HERE/boot/qdisk.dts" "$W/"
cp "$HERE/boot/devices.sh" "$P/"
# The disk e2e-blk reads: 1 MiB of random bytes, and their digest.
head -c 1048576 /dev/urandom > "$P/disk.img"
sha256sum "$P/disk.img" | cut -d' ' -f1 > "$P/disk.sha256"
# A throw-away CA and a code-signing certificate (as scripts/demo.sh).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
  -out "$W/ca.pem" -subj "/CN=e2e launch CA" -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/signer.key" \
  -out "$W/signer.csr" -subj "/CN=e2e release signer" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' > "$W/ext.cnf"
openssl x509 -req -in "$W/signer.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -out "$W/signer.pem" -days 2 -extfile "$W/ext.cnf" 2>/dev/null
cp "$W/ca.pem" "$P/trust/"

"$DOMB" build "$W/launch.dts" --key "$W/signer.key" --cert "$W/signer.pem" --generation 1 \
  --banks sha1,sha256,sha384,sha512 -o "$P/bundle.dombb" --no-progress
"$DOMB" bundle verify "$P/bundle.dombb" --trust "$P/trust" >/dev/null
# One byte flipped inside the data of e2e-pvh's kernel (the manifest and signature intact).
# Made here to check that it is refused on the host too; dom0 gets only the byte's offset
# and value and the result's sha256, and makes its own copy (a second 30 MB bundle in the
# initramfs would not fit dom0's memory).
cp "$P/bundle.dombb" "$W/tampered.dombb"
python3 - "$W/tampered.dombb" "$P/tamper.txt" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
i = b.find(b'modules/e2e-pvh/kernel')
if i < 0: sys.exit('no modules/e2e-pvh/kernel member in the bundle')
off = i + 512 + 100   # 512: the tar header; 100: a byte of the member's data
b[off] ^= 1
open(p, 'wb').write(b)
open(sys.argv[2], 'w').write('%d %d\n' % (off, b[off]))
PY
sha256sum "$W/tampered.dombb" | cut -d' ' -f1 >> "$P/tamper.txt"
if "$DOMB" bundle verify "$W/tampered.dombb" --trust "$P/trust" >/dev/null 2>&1; then
  echo "e2e-boot: the tampered bundle verifies on the host" >&2; exit 2
fi
# A launch whose vbd backend nobody serves (qdisk, and no QEMU): refused before anything
# runs. Its own PCRs (14, 15), so the real launch still finds 12 and 13 at reset.
printf '{"version": 1, "pcrs": {"configuration": 14, "commandLine": 14, "image": 15}, "requiredBanks": ["sha256"]}\n' \
  > "$W/pcr-14-15.json"
"$DOMB" build "$W/qdisk.dts" --key "$W/signer.key" --cert "$W/signer.pem" --generation 1 --policy "$W/pcr-14-15.json" \
  -o "$P/qdisk.dombb" --no-progress
# The signed Xenstore plan, and parts of it (for the xl cross-checks).
tar -xOf "$P/bundle.dombb" xenstore-plan.json > "$P/plan.json"
for d in e2e-pv e2e-pvh devices:e2e-netdom,e2e-blk,e2e-net; do
  python3 - "$P/plan.json" "$P/plan-${d%%:*}.json" "${d#*:}" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
names = sys.argv[3].split(',')
plan['domains'] = [d for d in plan['domains'] if d['name'] in names]
assert len(plan['domains']) == len(names), 'not all of %s in the plan' % names
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
# The Linux domains as xl.cfg: the same kernels, command lines, memory and devices.
L=/e2e/payload/boot/linux
linux_cfg() { # NAME MEMORY RAMDISK ARGS [LINE...]
  local name=$1 memory=$2 ramdisk=$3 args=$4; shift 4
  { echo "name = \"$name\""; echo 'type = "pv"'; echo "kernel = \"$L/vmlinuz\""; echo "ramdisk = \"$L/$ramdisk\""
    echo "cmdline = \"console=hvc0 loglevel=4 xen_legacy_crash $args\""; echo "memory = $memory"; echo 'vcpus = 1'
    for line in "$@"; do echo "$line"; done; } > "$P/$name.cfg"
}
linux_cfg e2e-netdom 128 netdom.cpio.gz "e2e_role=netdom e2e_name=e2e-netdom e2e_ip=10.0.0.1" 'driver_domain = 1'
linux_cfg e2e-blk 96 guest.cpio.gz "e2e_role=blk e2e_name=e2e-blk e2e_disk_bytes=1048576" \
  "disk = [ 'format=raw,vdev=xvda,access=rw,target=/dev/loop0' ]" 'on_poweroff = "destroy"'
linux_cfg e2e-net 96 guest.cpio.gz "e2e_role=net e2e_name=e2e-net e2e_ip=10.0.0.2 e2e_peer=10.0.0.1" \
  "vif = [ 'mac=00:16:3e:0e:2e:02,bridge=xenbr0,backend=e2e-netdom' ]" 'on_reboot = "restart"' 'on_crash = "preserve"'
openssl rand -hex 20 > "$P/nonce"
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "e2e-boot: host preparation (domb build, bundle, plan) %.1f s\n", b - a }'

export E2E_BOOT_WORK=$W
# dom0 holds the initramfs unpacked (~210 MB with the debug domb CI uses, the bundle and
# the Linux images), the sealed images domb keeps for restarts (~30 MB) and the xl copies:
# more than run.sh's default 512 MB leaves room for. The five domains need 400 MB besides.
export E2E_DOM0_MEM=${E2E_DOM0_MEM:-640M}
# The xl.cfg oracle adds a few minutes of dom0 time (two programs per corpus file): a longer
# default limit (a --timeout given here comes later and wins).
exec "$HERE/run.sh" --no-builtin --domb "$DOMB" --timeout 1800 --payload "$P=boot" \
  --payload "$REPO/Tests/DombXLConfigTests/Corpus=xlcfg" \
  --fragment "$HERE/boot/dom0.sh" --fragment "$HERE/xlcfg/dom0.sh" \
  --host-check "$HERE/boot/host-attest.sh" --host-check "$HERE/xlcfg/host-report.sh" ${ARGS[@]+"${ARGS[@]}"}
