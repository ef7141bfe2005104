#!/bin/bash
# Regenerates FuzzTesting/Seeds/ from the repository's fixtures, examples and test images
# (the committed seeds are this script's output; libFuzzer grows its corpus from them in
# FuzzTesting/corpus/, which is not committed). Needs dtc, gcc/ld/cpio (images/), gzip,
# bzip2, xz, zstd, lz4, lzop.
set -euo pipefail
cd "$(dirname "$0")/.."
S=FuzzTesting/Seeds
# Only the directories this script owns (FuzzXenstore's seeds are hand-written).
for d in FuzzHex FuzzLaunchDTB FuzzXLConfig FuzzXLUtil FuzzELF FuzzBzImage FuzzCPIO FuzzDecompress FuzzEventLog FuzzQuote FuzzBundle; do
  rm -rf "${S:?}/$d" && mkdir -p "$S/$d"
done
make -s -C images
printf '00ff10a0' > $S/FuzzHex/hex; printf 'sha256' > $S/FuzzHex/alg
printf 'sha256:12,13+sha1:0-7' > $S/FuzzHex/selection
printf 'sha1:\n  0 : 0x%040d\nsha256:\n  12: 0x%064d\n  13: 0x%064d\n' 0 0 1 > $S/FuzzHex/pcrs.txt

# Device trees: the examples, compiled by dtc.
for f in examples/system.dts examples/xl/equivalent.dts; do
  dtc -q -I dts -O dtb -o "$S/FuzzLaunchDTB/$(basename "$f" .dts).dtb" "$f"
done
# Trees written for upstream Xen (dom0less, cpupools, the x86 series; Tests/DombModelTests/Fixtures/upstream).
for f in Tests/DombModelTests/Fixtures/upstream/*.dts; do
  dtc -q -I dts -O dtb -o "$S/FuzzLaunchDTB/upstream-$(basename "$f" .dts).dtb" "$f"
done
cp examples/xl/*.cfg $S/FuzzXLConfig/
# The libxlutil wrapper: the xl.cfg corpus (tools/examples and the man pages' examples).
cp Tests/DombXLConfigTests/Corpus/*.cfg examples/xl/*.cfg $S/FuzzXLUtil/

# Images.
cp images/out/pv-kernel.elf images/out/pvh-kernel.elf images/out/legacy-guest.elf $S/FuzzELF/
cp images/out/ramdisk.cpio images/out/ramdisk.cpio.gz $S/FuzzCPIO/
python3 - "$S/FuzzBzImage" <<'PY'
# Minimal bzImages as Tests/DombImagesTests/TestImages.swift builds them (boot protocol
# 2.15, 4 setup sectors), with a gzip and an xz payload (+ the u32 size trailer) of the
# PVH test kernel, and one with the ELF stored uncompressed.
import gzip, lzma, struct, sys
out = sys.argv[1]
elf = open("images/out/pvh-kernel.elf", "rb").read()
def bz(payload):
    img = bytearray(5 * 512)
    img[0x1F1] = 4
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x020F)
    struct.pack_into("<H", img, 0x20E, 0x100)
    img[0x300:0x30B] = b"6.1.0-test\0"
    img[0x211] = 1
    struct.pack_into("<I", img, 0x214, 0x100000)
    struct.pack_into("<H", img, 0x236, 1)
    struct.pack_into("<I", img, 0x248, 0)
    struct.pack_into("<I", img, 0x24C, len(payload))
    return bytes(img) + payload
open(f"{out}/gzip.bzImage", "wb").write(bz(gzip.compress(elf, 9, mtime=0)))
open(f"{out}/xz.bzImage", "wb").write(bz(lzma.compress(elf, check=lzma.CHECK_CRC32) + struct.pack("<I", len(elf))))
open(f"{out}/plain.bzImage", "wb").write(bz(elf))
PY

# Every compression format domb detects, of a small cpio.
D=$S/FuzzDecompress; R=images/out/ramdisk.cpio
gzip -n -9 -c $R > $D/cpio.gz; bzip2 -9 -c $R > $D/cpio.bz2; xz --check=crc32 -c $R > $D/cpio.xz
xz --format=lzma -c $R > $D/cpio.lzma; zstd -19 -q -c $R > $D/cpio.zst; lz4 -l -9 -c $R > $D/cpio.lz4
if command -v lzop >/dev/null; then lzop -c $R > $D/cpio.lzo; fi

# Event logs: the tpm2-tools fixtures, the real-world corpus, and one small log per quirk
# (as Tests/DombCryptoTests/EventLogQuirkTests.swift builds them).
for f in Tests/DombCoreTests/Fixtures/eventlogs/tpm2-tools/*.bin Tests/DombCoreTests/Fixtures/eventlogs/real-world/*.bin; do
  cp "$f" $S/FuzzEventLog/
done
python3 - "$S/FuzzEventLog" <<'PY'
import hashlib, struct, sys
out = sys.argv[1]
ALG = {"sha1": 4, "sha256": 11, "sha384": 12}
def header(banks):
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(banks))
    for b in banks: spec += struct.pack("<HH", ALG[b], hashlib.new(b).digest_size)
    spec += b"\0"
    return struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(spec)) + spec
def rec(pcr, typ, data, banks, zero=False):
    r = struct.pack("<III", pcr, typ, len(banks))
    for b in banks: r += struct.pack("<H", ALG[b]) + (bytes(hashlib.new(b).digest_size) if zero else hashlib.new(b, data).digest())
    return r + struct.pack("<I", len(data)) + data
def sha1rec(pcr, typ, data):
    return struct.pack("<II", pcr, typ) + hashlib.sha1(data).digest() + struct.pack("<I", len(data)) + data
B = ["sha1", "sha256"]
body = rec(0, 0x80000010, b"HCRTM", B) + rec(0, 8, b"1.0", B) + rec(17, 0xD, b"drtm", B)
logs = {
    "quirk-hcrtm.bin": header(B) + body,
    "quirk-startup-locality.bin": header(B) + rec(0, 3, b"StartupLocality\0\x03", B, zero=True) + body,
    "quirk-zero-fill.bin": header(B) + body + bytes(256),
    "quirk-ff-fill.bin": header(B) + body + b"\xff" * 256,
    "quirk-pcr-minus-one.bin": header(B) + body + rec(0xFFFFFFFF, 3, b"SIPA", B),
    "quirk-bank-subset.bin": header(B + ["sha384"]) + rec(4, 0xD, b"a", B) + rec(4, 0xD, b"b", ["sha256"]) + rec(5, 0xD, b"c", ["sha1"]),
    "quirk-sha1-fill-pcr-minus-one.bin": sha1rec(0, 8, b"1.0") + sha1rec(0xFFFFFFFF, 3, b"SIPA") + bytes(64),
}
for name, data in logs.items():
    open(f"{out}/{name}", "wb").write(data)
open(f"{out}/README.md", "w").write(
    "Seeds for FuzzEventLog (written by FuzzTesting/make-seeds.sh). The tpm2-tools and real-world logs are\n"
    "third-party test data: sources and licences in Tests/DombCoreTests/Fixtures/eventlogs/*/README.md.\n")
PY

# Quotes: the swtpm quote of TPMSAttestTests and a quote file wrapping it.
python3 - "$S/FuzzQuote" <<'PY'
import base64, json, sys
out = sys.argv[1]
q = "/1RDR4AYACIAC71oDj5/6cgpfHnzetxpOYQfbbme1q+aTe3VRXX+BGXcABTsDIwrMAg5uamgLNkMlnKZzjpXaQAAAAAAANoiAAAAAQAAAAABIBkQIwAWNjYAAAABAAsDADAAACD1pf1C0WogMCeY727TCZebQwA9IyDZ8OjqmDGpJ1n7Sw=="
open(f"{out}/swtpm.attest", "wb").write(base64.b64decode(q))
doc = {"format": "domb-quote/1", "attest": q,
       "signature": {"scheme": "ecdsa", "hash": "sha256", "encoding": "der", "value": base64.b64encode(b"0\x06\x02\x01\x01\x02\x01\x01").decode()},
       "selection": "sha256:12,13",
       "pcrs": [{"bank": "sha256", "pcr": 12, "digest": "00" * 32}, {"bank": "sha256", "pcr": 13, "digest": "11" * 32}],
       "nonce": "ec0c8c2b300839b9a9a02cd90c967299ce3a5769",
       "akPublicKey": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
       "eventLog": base64.b64encode(open("Tests/DombCoreTests/Fixtures/eventlogs/tpm2-tools/event.bin", "rb").read()).decode()}
open(f"{out}/quote.json", "wb").write(json.dumps(doc, sort_keys=True).encode())
PY
# Bundle manifest (canonical JSON, as docs/bundle.md) and a non-canonical JSON document.
python3 - "$S/FuzzBundle" <<'PY'
import json, sys
out = sys.argv[1]
def member(path, size, c):
    return {"path": path, "size": size, "digests": {"sha1": c * 40, "sha256": c * 64}}
k = member("modules/web/kernel", 5856, "a"); k["role"] = "kernel"
r = member("modules/web/ramdisk", 1024, "b"); r["role"] = "ramdisk"
m = {"format": "domb-launch-bundle", "formatVersion": 1, "generation": 7, "banks": ["sha1", "sha256"],
     "domains": [{"name": "web", "modules": [k, r]}],
     "launchDTB": member("launch.dtb", 4038, "c"), "xenstorePlan": member("xenstore-plan.json", 900, "d"),
     "predictedEventLog": member("eventlog.predicted", 1200, "e"),
     "pcrPolicy": {"configuration": 12, "images": 13},
     "predictedPCRs": {"sha1": {"12": "1" * 40, "13": "2" * 40}, "sha256": {"12": "3" * 64, "13": "4" * 64}}}
open(f"{out}/manifest.json", "w").write(json.dumps(m, sort_keys=True, separators=(",", ":")))
open(f"{out}/pretty.json", "w").write(json.dumps({"a": [1, -2, True, False, None, "\u00e9\\n\"x"], "b": {"c": {}}}, indent=2))
# The secrets documents (docs/secrets.md, "Files"): a signed PCR policy and a sealed file.
pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
pol = {"bank": "sha256", "pcrs": [12, 13], "pcrValues": {"12": "3" * 64, "13": "4" * 64}, "policyRef": "",
       "policyDigest": "5" * 64, "signature": "3006020101020101"}
p = {"format": "domb-signed-pcr-policy", "formatVersion": 1, "publicKey": pem, "keyName": "000b" + "6" * 64,
     "keyFingerprint": "7" * 64, "policies": [pol, dict(pol, bank="sha1", pcrValues={"12": "1" * 40, "13": "2" * 40})]}
open(f"{out}/pcr-policy.json", "w").write(json.dumps(p, sort_keys=True, separators=(",", ":")))
area = "0008000b00000012" + "0020" + "a5" * 32 + "00100000"
s = {"format": "domb-sealed-secret", "formatVersion": 1, "parent": {"template": "ecc-p256-srk", "name": "000b" + "4" * 64},
     "policyKeyName": "000b" + "5" * 64, "policyKeyFingerprint": "6" * 64, "policyRef": "73746f72616765", "pin": False,
     "authPolicy": "a5" * 32, "public": "%04x" % (len(area) // 2) + area, "private": "000401020304"}
open(f"{out}/secret.sealed", "w").write(json.dumps(s, sort_keys=True, separators=(",", ":")) + "\n")
PY
du -sh "$S"
