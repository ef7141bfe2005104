# dom0 half of the `domb boot` scenario (scripts/e2e/boot-scenario.sh; docs/e2e.md).
# Sourced by the dom0 /init after lib.sh. Payload (from the host) in $E2E_PAYLOAD/boot:
#   bundle.dombb  the signed launch of launch.dts
#   tamper.txt    "OFFSET VALUE" of one byte of e2e-pvh's kernel in it, flipped; the sha256 of the result
#   trust/        the CA that signed it               plan.json       the bundle's Xenstore plan
#   plan-e2e-pv(h).json  that plan's e2e-pv(h) domain alone  e2e-pv(h).cfg  the same as xl.cfg
#   nonce         the verifier's nonce for the quote
#   devices.sh    the device and lifecycle checks (and their payload, listed there)
# Order: the negative runs first (the TPM's launch PCRs must still be at reset afterwards,
# which the real launch then depends on), the xl cross-checks, then the launch and its
# checks, the lifecycle actions last.
_b=$E2E_PAYLOAD/boot
_o=$E2E_OUT/boot
mkdir -p "$_o" /var/log/xen/console
_domains="e2e-pv e2e-pvh e2e-netdom e2e-blk e2e-net"
. "$_b/devices.sh"

# Only dom0 in `xl list` (header + Domain-0).
boot_only_dom0() {
  xl list > "$_o/xl-list.txt" 2>&1; cat "$_o/xl-list.txt"
  [ "$(grep -vc '^Name' "$_o/xl-list.txt")" = 1 ] && grep -q '^Domain-0 ' "$_o/xl-list.txt"
}
# PCRs 12 and 13 all zero in every bank domb reads.
boot_pcrs_reset() {
  domb tpm pcrread --tpm "$E2E_TPM" --pcrs 12,13 > "$_o/pcrs.txt" 2>&1 || { cat "$_o/pcrs.txt"; return 1; }
  cat "$_o/pcrs.txt"
  # Every hex string of 40+ digits must be zeros.
  ! grep -oE '[0-9a-fA-F]{40,}' "$_o/pcrs.txt" | grep -q '[1-9a-fA-F]'
}

# --- 1. Negative: a bundle with one tampered module is refused, nothing is built or measured.
e2e_mark boot-negative
# The tampered copy, made here from the bundle and the host's offset, must be the host's.
boot_tamper() { # OUT
  read -r _off _val < "$_b/tamper.txt" && cp "$_b/bundle.dombb" "$1" || return 1
  printf "\\$(printf %o "$_val")" | dd of="$1" bs=1 seek="$_off" conv=notrunc 2>/dev/null || return 1
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$(sed -n 2p "$_b/tamper.txt")" ] || { echo "$1 is not the host's tampered bundle"; return 1; }
  echo "byte $_off of the bundle set to $_val: $(sha256sum "$1" | cut -d' ' -f1)"
}
e2e_check boot-tampered-made boot_tamper "$_o/tampered.dombb"
echo "E2E-CHECK name=boot-tampered-refused"
domb boot "$_o/tampered.dombb" --trust "$_b/trust" --backend libxl --tpm "$E2E_TPM" \
  --eventlog "$_o/refused.log" --json > "$_o/refused.out" 2>&1; _rc=$?
sed 's/^/[boot-tampered-refused] /' "$_o/refused.out"
if [ $_rc != 0 ] && grep -qE '"result" ?: ?"refused"' "$_o/refused.out" && [ ! -e "$_o/refused.log" ]; then
  e2e_pass boot-tampered-refused "exit $_rc, $(grep -m1 'digest mismatch' "$_o/refused.out" | cut -c1-160)"
else
  e2e_fail boot-tampered-refused "exit $_rc (want non-zero, result refused, no event log)"
fi
e2e_check boot-tampered-no-domain boot_only_dom0
e2e_check boot-tampered-pcrs-reset boot_pcrs_reset
rm -f "$_o/tampered.dombb"
# A device whose backend nobody serves: refused before anything runs (PCRs 14 and 15).
e2e_check boot-dom0-backends dev_setup_dom0
dev_refused

# --- 2. The xl cross-check: e2e-pv and e2e-pvh written as xl.cfg, each created paused by xl;
# its Xenstore against domb's plan for that domain, exact (a paused domain) but for the kernel
# path (xl reads /e2e/images/pv-kernel.elf, the plan names the bundle's module). console/tty,
# which xenconsoled writes as soon as xl introduces the domain, is a kept node of the plan.
e2e_mark boot-xl-crosscheck
for _d in e2e-pv e2e-pvh; do
  if e2e_check "boot-xl-$_d-create" xl create -p "$_b/$_d.cfg"; then
    xenstore-ls -fp > "$_o/xenstore-xl-$_d.txt" 2>&1
    e2e_file "boot-xenstore-xl-$_d.txt" "$_o/xenstore-xl-$_d.txt"
    e2e_check "boot-xl-$_d-vs-plan" domb xenstore compare "$_b/plan-$_d.json" "$_o/xenstore-xl-$_d.txt" \
      --ignore '/vm/*/image/kernel'
    xl destroy "$_d"
  fi
done
e2e_check boot-xl-gone boot_only_dom0

# --- 3. The launch: domb boot through libxl and the QEMU TPM TIS device. It returns (prints
# "supervising") once every device is connected, and stays to carry out the lifecycle
# actions (--supervise).
e2e_mark boot-launch-start
_t0=$(dev_now)
domb boot "$_b/bundle.dombb" --trust "$_b/trust" --backend libxl --tpm "$E2E_TPM" \
  --eventlog "$_o/eventlog.bin" --supervise --device-timeout 300 > "$_o/boot.out" 2>&1 &
BOOT_PID=$!
echo "E2E-CHECK name=boot-launch"
boot_launch_over() { grep -q '^supervising' "$_o/boot.out" || ! kill -0 $BOOT_PID 2>/dev/null; }
dev_wait 1200 boot_launch_over
sed 's/^/[boot-launch] /' "$_o/boot.out"
if grep -q '^supervising' "$_o/boot.out" && dev_wait 60 dev_connected 2 e2e-blk e2e-net; then
  DOMB_SECONDS=$(dev_seconds "$_t0" "$(dev_now)")
  e2e_pass boot-launch "domb boot → both devices Connected at both ends in $DOMB_SECONDS s; $(grep -m1 'device(s) connected' "$_o/boot.out")"
else
  e2e_fail boot-launch "$(tail -n3 "$_o/boot.out")"
fi
e2e_mark boot-launch-end
xl list > "$_o/xl-list-launched.txt" 2>&1
e2e_file boot-xl-list.txt "$_o/xl-list-launched.txt"
# Xenstore right after the launch, then again once the guests have run.
xenstore-ls -fp > "$_o/xenstore-launch.txt" 2>&1
e2e_file boot-xenstore-launch.txt "$_o/xenstore-launch.txt"

# Each test guest prints its line on its PV console (xenconsoled logs it).
for _d in e2e-pv e2e-pvh; do
  case $_d in e2e-pvh) _want="domb test guest: pvh kernel booted";; *) _want="domb test guest: pv kernel booted";; esac
  _log=/var/log/xen/console/guest-$_d.log
  if dev_wait_line 120 "$_log" "$_want"; then
    e2e_pass "boot-$_d-printed" "$(grep -m1 "$_want" "$_log")"
  else
    e2e_fail "boot-$_d-printed" "no '$_want' in $_log within 120 s; console tail: $(tail -n5 "$_log" 2>/dev/null)"
  fi
  [ -f "$_log" ] && e2e_file "boot-console-$_d" "$_log"
done
e2e_mark boot-guests-printed

# `xl list`: each domain with its declared memory (MiB); `xl vcpu-list`: its declared vCPUs
# (xl list's VCPUs column counts vCPUs online, and the test guest never brings up a PV
# secondary vCPU, seen on Xen 4.17). The domains are still there after their poweroff:
# on-poweroff is preserve (and only xl's own monitor process would act on it anyway).
boot_xl_list() { # NAME MEM VCPUS
  xl list "$1" 2>&1 | awk -v m="$2" '{ print }
    NR == 2 { if ($3 != m) { print "want memory " m ", got " $3; exit 1 } }
    END { if (NR < 2) { print "not in xl list"; exit 1 } }' || return 1
  _n=$(xl vcpu-list "$1" 2>&1 | tee /dev/stderr | awk -v d="$1" '$1 == d' | wc -l)
  [ "$_n" = "$3" ] || { echo "want $3 vcpus, xl vcpu-list shows $_n"; return 1; }
  echo "memory $2 MiB, $_n vcpus, state $(xl list "$1" | awk 'NR == 2 { print $5 }')"
}
e2e_check boot-e2e-pv-list boot_xl_list e2e-pv 32 1
e2e_check boot-e2e-pvh-list boot_xl_list e2e-pvh 48 1
e2e_check boot-e2e-netdom-list boot_xl_list e2e-netdom 128 1
e2e_check boot-e2e-blk-list boot_xl_list e2e-blk 96 1
e2e_check boot-e2e-net-list boot_xl_list e2e-net 96 1
# The devices and the lifecycle only mean something if the launch came up; otherwise their
# waits would only cost time (what failed is in boot-launch and the consoles sent back).
if [ -n "$DOMB_SECONDS" ]; then dev_launch_checks; else dev_collect boot-domb; fi

# Xenstore against the signed plan: exact right after the launch would race the guests, so
# after they ran with --running (forgives what guests, backends and xenconsoled write).
xenstore-ls -fp > "$_o/xenstore-ran.txt" 2>&1
e2e_file boot-xenstore-ran.txt "$_o/xenstore-ran.txt"
e2e_check boot-xenstore-vs-plan domb xenstore compare "$_b/plan.json" "$_o/xenstore-ran.txt" --running
# For the record (not a check): the exact comparison of the listing taken right after the launch.
domb xenstore compare "$_b/plan.json" "$_o/xenstore-launch.txt" > "$_o/compare-exact.txt" 2>&1
e2e_file boot-compare-exact.txt "$_o/compare-exact.txt"

# The event log against the TPM; a quote with the log for the host's verifier.
e2e_check boot-log-verify domb log verify "$_o/eventlog.bin" --tpm "$E2E_TPM"
e2e_file boot-eventlog.bin "$_o/eventlog.bin"
e2e_check boot-ak-create domb ak create --tpm "$E2E_TPM" -o "$_o/ak.pub.pem"
e2e_check boot-quote domb quote --tpm "$E2E_TPM" --nonce "$(cat "$_b/nonce")" --pcrs sha256:12,13 \
  --eventlog "$_o/eventlog.bin" -o "$_o/quote.json"
e2e_file boot-ak.pub.pem "$_o/ak.pub.pem"
e2e_file boot-quote.json "$_o/quote.json"

# Lifecycle actions, carried out by the supervising domb.
if [ -n "$DOMB_SECONDS" ]; then dev_lifecycle; else e2e_fail boot-lifecycle "not run: the launch failed"; fi
# Leave nothing running; the supervisor ends when no domain it started is left.
for _d in $_domains; do xl destroy "$_d" 2>/dev/null; done
e2e_check boot-cleaned-up boot_only_dom0
boot_supervisor_gone() { ! kill -0 $BOOT_PID 2>/dev/null; }
if dev_wait 60 boot_supervisor_gone && grep -q 'no supervised domain is left' "$_o/boot.out"; then
  wait $BOOT_PID; _rc=$?
  [ $_rc = 0 ] && e2e_pass boot-supervisor-done "exit 0 once every domain it started was gone" \
    || e2e_fail boot-supervisor-done "exit $_rc: $(tail -n2 "$_o/boot.out")"
else
  e2e_fail boot-supervisor-done "still running or no closing line: $(tail -n2 "$_o/boot.out")"; kill $BOOT_PID 2>/dev/null
fi
e2e_file boot-supervise.txt "$_o/boot.out"

# --- 4. The same Linux domains through xl: the baseline for the time to connected devices,
# and xl's Xenstore for them against domb's plan. Last, so that a host too loaded for
# libxl's fixed hotplug timeouts (10 s for a backend, 40 s for a script) costs only this.
dev_xl_path
e2e_check boot-xl-devices-gone boot_only_dom0
if [ -n "$DOMB_SECONDS" ] && [ -n "$XL_SECONDS" ]; then
  e2e_pass boot-timing "$(awk -v d="$DOMB_SECONDS" -v x="$XL_SECONDS" 'BEGIN { printf "to all devices connected: domb boot %.1f s (verify, measure, build, devices), xl create %.1f s; ratio domb/xl %.2f", d, x, d / x }')"
else
  e2e_fail boot-timing "no time for both: domb boot \"${DOMB_SECONDS}\" s, xl create \"${XL_SECONDS}\" s"
fi
e2e_mark boot-end
