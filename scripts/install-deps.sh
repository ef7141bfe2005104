#!/bin/sh
# Installs the Debian 12 packages domb builds and tests with. Idempotent; needs root
# (or sudo). Swift itself (6.x) must already be on PATH: https://www.swift.org/install/
set -eu
# Release keys in tokens (docs/secrets.md): softhsm2 + gnutls-bin (p11tool) for the PKCS#11
# tests, opensc (pkcs11-tool) as their second reader of a key's extractability, libengine-pkcs11-openssl and tpm2-openssl for `--key pkcs11:…|handle:…`; jq for the
# documented tpm2-tools and OpenSSL recipes. graphviz renders the topology picture (config
# show --svg), man-db checks the installed manual pages, python3-jsonschema validates every
# --json output against docs/schemas/.
PACKAGES="pkg-config libtss2-dev libssl-dev libfdt-dev libarchive-dev libxen-dev
  swtpm swtpm-tools tpm2-tools openssl device-tree-compiler
  xz-utils zstd gzip bzip2 lz4 cpio make gcc binutils python3 xxd
  xen-utils-4.17
  softhsm2 gnutls-bin opensc libengine-pkcs11-openssl tpm2-openssl jq
  graphviz man-db python3-jsonschema"
# --e2e: also what scripts/e2e/run.sh needs (QEMU, and the xenstore tools copied into dom0).
[ "${1:-}" = --e2e ] && PACKAGES="$PACKAGES qemu-system-x86 xenstore-utils"
# --keylime: what scripts/keylime/scenario.sh needs (Keylime's gpg binding builds from source).
[ "${1:-}" = --keylime ] && PACKAGES="$PACKAGES libgpgme-dev python3-venv curl bc"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install Swift 6 (https://www.swift.org/install/)" >&2; exit 1; }
