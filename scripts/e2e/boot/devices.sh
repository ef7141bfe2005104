# Device and lifecycle checks of the `domb boot` scenario (docs/e2e.md, "Devices and
# lifecycle"), sourced by dom0.sh, which calls these functions. Payload in $_b:
#   linux/       vmlinuz, guest.cpio.gz, netdom.cpio.gz (scripts/e2e/linux/build.sh)
#   disk.img     1 MiB the vbd of e2e-blk serves through /dev/loop0 (disk.sha256: its digest)
#   e2e-netdom.cfg e2e-blk.cfg e2e-net.cfg   the same three domains as xl.cfg
#   plan-devices.json   the bundle's Xenstore plan of those three domains
#   qdisk.dombb  a signed one-domain launch whose vbd backend nobody serves (PCRs 14, 15)
_L=$_b/linux
_linux="e2e-netdom e2e-blk e2e-net"
_console=/var/log/xen/console

dev_gone() { ! xl domid "$1" >/dev/null 2>&1; }
dev_none_left() { [ "$(xl list | grep -c '^e2e-')" = 0 ]; }
dev_now() { cut -d' ' -f1 /proc/uptime; }
dev_seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# dev_wait SECONDS CMD...: poll CMD every 2 s, up to SECONDS of uptime. Every wait of the
# scenario polls this way: under TCG a fork in dom0 costs up to a second of the CPU the
# emulated guests need (lib.sh's e2e_wait_for polls every 0.1 s: it keeps a dom0 vCPU busy
# while the driver domain's vif-bridge must finish within libxl's fixed 40 s).
dev_wait() {
  _end=$(( $(cut -d. -f1 /proc/uptime) + $1 )); shift
  until "$@"; do [ "$(cut -d. -f1 /proc/uptime)" -lt $_end ] || return 1; sleep 2; done
}

# True once LOG holds more e2e-net PING/FAIL result lines than COUNT.
dev_new_ping_result() {
  [ "$(grep -cE 'E2E-GUEST (PING|FAIL) name=e2e-net' "$1")" -gt "$2" ]
}

# dom0 serves e2e-blk's vbd: blkback, and the disk image on /dev/loop0 (what both the launch
# and xl.cfg name; Xen's block script checks it and publishes its device number).
dev_setup_dom0() {
  insmod /lib/modules/xen-blkback.ko && insmod /lib/modules/loop.ko || return 1
  losetup /dev/loop0 "$_b/disk.img" || return 1
  echo "/dev/loop0 on disk.img, sha256 $(cat "$_b/disk.sha256")"
}

# One line per vbd and vif of DOMAIN...: "NAME KIND/DEVID frontend=S backend=S BACKEND-PATH",
# from one listing of the store (one process per poll).
dev_states() {
  xenstore-ls -f /local/domain 2>/dev/null | awk -v names=" $* " '
    { path = $1; value = $0; sub(/^[^=]*= "/, "", value); sub(/"$/, "", value); v[path] = value
      n = split(path, p, "/")
      if (n == 5 && p[5] == "name") { name[p[4]] = value }
      if (n == 8 && p[5] == "device" && (p[6] == "vbd" || p[6] == "vif") && p[8] == "backend") { dev[path] = 1 } }
    END { for (d in dev) { split(d, p, "/"); id = p[4]
            if (index(names, " " name[id] " ") == 0) continue
            front = substr(d, 1, length(d) - 8)
            printf "%s %s/%s frontend=%s backend=%s %s\n", name[id], p[6], p[7], v[front "/state"], v[v[d] "/state"], v[d] } }' | sort
}

# dev_connected COUNT DOMAIN...: exactly COUNT devices, each XenbusStateConnected (4) at
# both ends, read from Xenstore.
dev_connected() {
  _want=$1; shift
  dev_states "$@" > "$_o/states.txt"
  [ "$(grep -c . "$_o/states.txt")" = "$_want" ] && [ "$(grep -c 'frontend=4 backend=4 ' "$_o/states.txt")" = "$_want" ]
}

# dev_wait_line SECONDS FILE PATTERN: a line of FILE matches PATTERN (grep -E).
dev_wait_line() { dev_wait "$1" grep -qE "$3" "$2" 2>/dev/null; }

# --- The xl path: the same three domains through `xl create` (libxl and xl devd do the
# hotplug), timed the same way, and its Xenstore against domb's plan.
dev_xl_path() {
  # The launch's guests had the same names: their consoles go aside, so that what the xl
  # guests print is read from their own logs only.
  for _n in $_linux; do mv "$_console/guest-$_n.log" "$_console/domb-guest-$_n.log" 2>/dev/null; done
  e2e_mark boot-xl-devices-start
  _t0=$(dev_now)
  e2e_check boot-xl-netdom-create xl create "$_b/e2e-netdom.cfg" || return 1
  if ! dev_wait_line 300 "$_console/guest-e2e-netdom.log" "E2E-GUEST NETDOM-READY"; then
    e2e_fail boot-xl-netdom-ready "no NETDOM-READY within 300 s: $(tail -n5 "$_console/guest-e2e-netdom.log" 2>/dev/null)"
  fi
  # Paused, so the listing shows what the toolstack wrote before the guests ran.
  e2e_check boot-xl-net-create xl create -p "$_b/e2e-net.cfg"
  e2e_check boot-xl-blk-create xl create -p "$_b/e2e-blk.cfg"
  xenstore-ls -fp > "$_o/xenstore-xl-devices.txt" 2>&1
  xl unpause e2e-net; xl unpause e2e-blk
  if dev_wait 300 dev_connected 2 e2e-blk e2e-net; then
    XL_SECONDS=$(dev_seconds "$_t0" "$(dev_now)")
    e2e_pass boot-xl-devices-connected "xl create → both devices Connected at both ends in $XL_SECONDS s: $(tr '\n' ';' < "$_o/states.txt")"
  else
    e2e_fail boot-xl-devices-connected "not connected within 300 s: $(dev_states $_linux | tr '\n' ';')"
  fi
  e2e_mark boot-xl-devices-connected
  e2e_file boot-xenstore-xl-devices.txt "$_o/xenstore-xl-devices.txt"
  # What xl's toolstack and domb's plan write for these domains. The listing is exact for
  # e2e-blk and e2e-net (paused) but e2e-netdom ran, so --running; the exact differences are
  # kept as a record.
  e2e_check boot-xl-devices-vs-plan domb xenstore compare "$_b/plan-devices.json" "$_o/xenstore-xl-devices.txt" \
    --running --ignore '/vm/*/image/kernel' --ignore '/vm/*/image/ramdisk'
  domb xenstore compare "$_b/plan-devices.json" "$_o/xenstore-xl-devices.txt" \
    --ignore '/vm/*/image/kernel' --ignore '/vm/*/image/ramdisk' > "$_o/compare-xl-devices-exact.txt" 2>&1
  e2e_file boot-compare-xl-devices-exact.txt "$_o/compare-xl-devices-exact.txt"
  dev_guest_lines xl
  dev_collect boot-xl
  for _n in e2e-net e2e-blk e2e-netdom; do xl destroy "$_n"; done
  dev_wait 60 dev_none_left
  e2e_mark boot-xl-devices-end
}

# dev_guest_lines PREFIX: the vbd guest read the known bytes, the vif guest pinged the
# driver domain over the bridge.
dev_guest_lines() {
  _want=$(cat "$_b/disk.sha256")
  if dev_wait_line 120 "$_console/guest-e2e-blk.log" "E2E-GUEST (BLK|FAIL)" \
    && grep -q "E2E-GUEST BLK name=e2e-blk sha256=$_want " "$_console/guest-e2e-blk.log"; then
    e2e_pass "boot-$1-blk-read" "$(grep -m1 'E2E-GUEST BLK' "$_console/guest-e2e-blk.log")"
  else
    e2e_fail "boot-$1-blk-read" "want sha256=$_want from /dev/xvda; console: $(grep -E 'E2E-GUEST (BLK|FAIL)' "$_console/guest-e2e-blk.log" | tail -n2)"
  fi
  if dev_wait_line 120 "$_console/guest-e2e-net.log" "E2E-GUEST (PING|FAIL)" \
    && grep -q "E2E-GUEST PING name=e2e-net peer=10.0.0.1 ok" "$_console/guest-e2e-net.log"; then
    e2e_pass "boot-$1-net-ping" "$(grep -m1 'E2E-GUEST PING' "$_console/guest-e2e-net.log")"
  else
    e2e_fail "boot-$1-net-ping" "console: $(grep -E 'E2E-GUEST (PING|FAIL)' "$_console/guest-e2e-net.log" | tail -n2)"
  fi
}

# --- A backend that never connects: the qdisk vbd of qdisk.dombb has no QEMU to serve it.
# The launch is refused before anything runs, naming the device.
dev_refused() {
  echo "E2E-CHECK name=boot-device-refused"
  domb boot "$_b/qdisk.dombb" --trust "$_b/trust" --backend libxl --tpm "$E2E_TPM" --device-timeout 15 \
    --eventlog "$_o/qdisk.log" > "$_o/qdisk.out" 2>&1; _rc=$?
  sed 's/^/[boot-device-refused] /' "$_o/qdisk.out"
  if [ $_rc != 0 ] && grep -q 'launch refused while setting up device backends: vbd 51712 (xvda) of e2e-qdisk' "$_o/qdisk.out" \
    && grep -q 'no domain was unpaused' "$_o/qdisk.out" && grep -q 'destroyed: e2e-qdisk' "$_o/qdisk.out" \
    && boot_only_dom0 >/dev/null; then
    e2e_pass boot-device-refused "exit $_rc: $(grep -m1 -o 'vbd 51712 (xvda) of e2e-qdisk.*' "$_o/qdisk.out" | cut -c1-220)"
  else
    e2e_fail boot-device-refused "exit $_rc (want non-zero, the device named, nothing unpaused, e2e-qdisk destroyed, only Domain-0 left)"
  fi
}

# dev_collect PREFIX: the Linux guests' consoles and dom0's hotplug log, to the host
# (RUN/files/PREFIX-*), where a failure is read.
dev_collect() {
  for _n in $_linux; do
    [ -f "$_console/guest-$_n.log" ] && e2e_file "$1-console-$_n.log" "$_console/guest-$_n.log"
  done
  [ -f /var/log/xen/xen-hotplug.log ] && e2e_file "$1-xen-hotplug.log" /var/log/xen/xen-hotplug.log
}

# --- The launch's devices, from Xenstore and from the guests; the consoles.
dev_launch_checks() {
  if dev_connected 2 e2e-blk e2e-net; then
    e2e_pass boot-devices-connected "$(tr '\n' ';' < "$_o/states.txt")"
  else
    e2e_fail boot-devices-connected "$(dev_states $_linux | tr '\n' ';')"
  fi
  dev_guest_lines domb
  # The driver domain's xl devd ran vif-bridge: hotplug-status connected in its backend.
  _be=$(grep ' vif/0 ' "$_o/states.txt" | awk '{ print $5 }')
  if [ "$(xenstore-read "$_be/hotplug-status" 2>/dev/null)" = connected ]; then
    e2e_pass boot-netdom-hotplug "$_be/hotplug-status = connected (vif-bridge by xl devd in e2e-netdom)"
  else
    e2e_fail boot-netdom-hotplug "$_be/hotplug-status = \"$(xenstore-read "$_be/hotplug-status" 2>&1)\""
  fi
  # `xl console` through the pty xenconsoled wrote into console/tty (kept by the plan).
  for _n in e2e-blk e2e-netdom; do
    _id=$(e2e_domid "$_n")
    _tty=$(xenstore-read "/local/domain/$_id/console/tty" 2>/dev/null)
    (sleep 16 | timeout 14 xl console "$_n" > "$_o/console-$_n.txt" 2>&1)
    if grep -q "E2E-GUEST TICK name=$_n" "$_o/console-$_n.txt"; then
      e2e_pass "boot-xl-console-$_n" "tty $_tty: $(grep -m1 "E2E-GUEST TICK" "$_o/console-$_n.txt" | tr -d '\r')"
    else
      e2e_fail "boot-xl-console-$_n" "tty \"$_tty\"; xl console printed: $(head -c 200 "$_o/console-$_n.txt" | tr '\r\n' '  ')"
    fi
  done
}

# --- Lifecycle: on_reboot=restart from the sealed images (the bundle and the images are
# deleted first: nothing is left to re-read), on_crash=preserve, on_poweroff=destroy, and
# xl destroy, each carried out by `domb boot --supervise` ($BOOT_PID, output $_o/boot.out).
dev_lifecycle() {
  _kernel=$(sha256sum "$_L/vmlinuz" | cut -d' ' -f1)
  _ramdisk=$(sha256sum "$_L/guest.cpio.gz" | cut -d' ' -f1)
  # The bundle is the only file domb read the images from; the Linux images (xl's copies,
  # for the xl path later) are moved out of sight too.
  rm -f "$_b/bundle.dombb" "$_b/qdisk.dombb"
  mv "$_L" "$_L.hidden"
  _memfds=$(ls -l "/proc/$BOOT_PID/fd" 2>/dev/null | grep -c 'memfd:domb')
  _old=$(e2e_domid e2e-net)
  _pings=$(grep -c 'E2E-GUEST PING name=e2e-net' "$_console/guest-e2e-net.log")
  _results=$(grep -cE 'E2E-GUEST (PING|FAIL) name=e2e-net' "$_console/guest-e2e-net.log")
  e2e_mark boot-reboot
  xl reboot e2e-net
  if dev_wait_line 300 "$_o/boot.out" "e2e-net \(domid $_old\): .*restarted as domid [0-9]+"; then
    _line=$(grep -m1 "e2e-net (domid $_old): .*restarted as domid" "$_o/boot.out")
    _new=$(e2e_domid e2e-net)
    if [ -n "$_new" ] && [ "$_new" != "$_old" ] && echo "$_line" | grep -q "kernel .*sha256:$_kernel" \
      && echo "$_line" | grep -q "ramdisk .*sha256:$_ramdisk"; then
      e2e_pass boot-restart "domid $_old → $_new, the bundle deleted before, $_memfds sealed memfds held by domb; $(echo "$_line" | cut -c1-220)"
    else
      e2e_fail boot-restart "domid $_old → $_new; want kernel sha256:$_kernel and ramdisk sha256:$_ramdisk in: $_line"
    fi
  else
    e2e_fail boot-restart "no restart of e2e-net (domid $_old) in the supervisor's output: $(tail -n3 "$_o/boot.out")"
  fi
  # The console log keeps the first guest's lines: wait for the restarted guest's own
  # result line (one more than before the reboot), not for any line.
  if dev_wait 300 dev_connected 2 e2e-blk e2e-net \
    && dev_wait 120 dev_new_ping_result "$_console/guest-e2e-net.log" "$_results" \
    && [ "$(grep -c 'E2E-GUEST PING name=e2e-net peer=10.0.0.1 ok' "$_console/guest-e2e-net.log")" -gt "$_pings" ]; then
    e2e_pass boot-restart-connected "the restarted e2e-net's vif connected again and pinged: $(tr '\n' ';' < "$_o/states.txt")"
  else
    e2e_fail boot-restart-connected "$(dev_states $_linux | tr '\n' ';') $(grep -E 'E2E-GUEST (PING|FAIL)' "$_console/guest-e2e-net.log" | tail -n1)"
  fi

  e2e_mark boot-crash
  _id=$(e2e_domid e2e-net)
  xl sysrq e2e-net c
  if dev_wait_line 120 "$_o/boot.out" "e2e-net \(domid $_id\): shut down \(crash\), on_crash=preserve: left in place" \
    && xl list e2e-net 2>/dev/null | awk 'NR == 2 { exit !($5 ~ /c/) }'; then
    e2e_pass boot-crash-preserved "$(xl list e2e-net | tail -n1)"
  else
    e2e_fail boot-crash-preserved "$(xl list e2e-net 2>&1 | tail -n1); $(tail -n2 "$_o/boot.out")"
  fi

  e2e_mark boot-poweroff
  _id=$(e2e_domid e2e-blk)
  xl shutdown e2e-blk
  if dev_wait_line 120 "$_o/boot.out" "e2e-blk \(domid $_id\): shut down \(poweroff\), on_poweroff=destroy: destroyed" \
    && dev_wait 30 dev_gone e2e-blk && grep -q 'E2E-GUEST POWEROFF' "$_console/guest-e2e-blk.log"; then
    e2e_pass boot-poweroff-destroyed "$(grep -m1 'E2E-GUEST POWEROFF' "$_console/guest-e2e-blk.log"); $(grep -m1 "e2e-blk (domid $_id): shut down" "$_o/boot.out")"
  else
    e2e_fail boot-poweroff-destroyed "$(xl list 2>&1 | tr '\n' ';'); $(tail -n2 "$_o/boot.out")"
  fi

  _id=$(e2e_domid e2e-net)
  xl destroy e2e-net
  if dev_wait_line 60 "$_o/boot.out" "e2e-net \(domid $_id\): destroyed \(not by domb"; then
    e2e_pass boot-xl-destroy "$(grep -m1 "e2e-net (domid $_id): destroyed" "$_o/boot.out")"
  else
    e2e_fail boot-xl-destroy "$(tail -n2 "$_o/boot.out")"
  fi
  mv "$_L.hidden" "$_L"
  dev_collect boot-domb
  e2e_mark boot-lifecycle-end
}
