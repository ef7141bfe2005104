#!/bin/bash
# The whole test suite: installs packages, builds warning-free, runs every test against
# real swtpm/OpenSSL/dtc/tpm2-tools, and checks that no swtpm was left running.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build --build-tests -Xswiftc -warnings-as-errors
LOG=$(mktemp /tmp/domb-test.XXXXXX.log)
# The suite's temporary files (and so every swtpm it starts, in TMPDIR/domb-swtpm.*) live in
# one directory of this run: the leak check below sees this run's swtpms, not another's.
RUN_TMP=$(mktemp -d /tmp/domb-test-run.XXXXXX)
trap 'rm -f "$LOG"; rm -rf "$RUN_TMP"' EXIT
# DOMB_REAL_KERNEL_TESTS: the readnotes cross-check also runs on Debian 12's real kernel
# (apt-get download, about 6 s; a failed download fails the suite instead of skipping).
DOMB_REAL_KERNEL_TESTS=1 TMPDIR=$RUN_TMP swift test --skip-build 2>&1 | tee "$LOG" | grep -vE '^(\x1b\[[0-9;]*m)?. Test (case passing|.* started)' || { tail -50 "$LOG"; exit 1; }
grep -qE 'Test run with [0-9]+ tests? .*passed' "$LOG"
if pgrep -f "$RUN_TMP/" >/dev/null; then
  echo "FAIL: processes the suite started were left running:"; pgrep -af "$RUN_TMP/"; exit 1
fi
# `make install` into a scratch DESTDIR: the binary, a manual page per command (rendered by
# man without a warning), and bash, zsh and fish completions (bash completes a subcommand).
./scripts/check-install.sh
# Every libFuzzer target for a short time (docs/fuzzing.md): a parser regression that
# crashes, leaks or hangs on the seeds or nearby inputs fails CI.
make fuzz-smoke
# End-to-end on real Xen 4.17 under QEMU (docs/e2e.md, "The domb boot scenario"): the debug
# domb just built launches a signed five-domain bundle in dom0 through libxl, with a host
# swtpm as the TPM (three Linux guests: a network driver domain, a vbd and a vif that must
# connect; reboot, crash, poweroff carried out by --supervise), the same Linux domains
# through xl as the baseline, a tampered bundle refused, the xl.cfg oracle. Its wall time
# follows the host's load under TCG: about 40 minutes at load 20 on 2 cores (docs/e2e.md,
# "Timings"); the harness kills QEMU at --timeout and leaves nothing running.
./scripts/install-deps.sh --e2e
./scripts/e2e/boot-scenario.sh --domb "$(swift build --show-bin-path)/domb" --timeout 3600
# A domb host attested by an unmodified Keylime 7.14.3 from PyPI (docs/keylime.md): the
# debug domb as agent with mutual TLS, registrar/verifier/tenant on loopback, the tampered
# host failed by Keylime and by domb. About 100 s with the venv cached in .keylime/, plus
# 30 to 150 s to install it on a fresh clone.
./scripts/install-deps.sh --keylime
./scripts/keylime/scenario.sh --domb "$(swift build --show-bin-path)/domb"
# One closing line for the whole run: the Swift suite's count (fuzzing and e2e fail the
# script on any error above).
count=$(grep -oE 'Test run with [0-9]+ tests?' "$LOG" | tail -1 | grep -oE '[0-9]+')
echo "make test: ${count} passed, 0 failed"
