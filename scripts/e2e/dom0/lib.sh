# Helpers for dom0 check scripts (busybox ash). Sourced by /init before the checks; every
# check script and --fragment is sourced in the same shell, so it can use these directly.
#
# The serial console is the only channel back to the host, so everything the host parses
# is one line with a fixed prefix (see docs/e2e.md):
#   E2E-MARK name uptime=S                      a phase boundary (the host timestamps it)
#   E2E-CHECK name=NAME                         a check starts (its output follows)
#   E2E-RESULT name=NAME status=pass|fail detail=TEXT
#   E2E-BEGIN-FILE name=NAME size=N sha256=HEX  then base64 lines, then
#   E2E-END-FILE name=NAME
#   E2E-DONE                                    the dom0 script ran to its end

E2E_OUT=/tmp/e2e            # per-check output, kept in dom0 for later checks
E2E_PAYLOAD=/e2e/payload    # files given with --payload
E2E_GUEST=/e2e/guest        # the test guest: vmlinuz, initrd.gz
E2E_TPM=device:/dev/tpmrm0  # domb's TCTI: the QEMU TPM TIS device, as on hardware
mkdir -p "$E2E_OUT"

e2e_uptime() { cut -d' ' -f1 /proc/uptime; }
e2e_mark() { echo "E2E-MARK $1 uptime=$(e2e_uptime)"; }

# e2e_result NAME pass|fail DETAIL...: one result line; DETAIL is flattened to one line.
e2e_result() {
  _n=$1 _s=$2; shift 2
  echo "E2E-RESULT name=$_n status=$_s detail=$(echo "$*" | tr '\r\n\t' '   ' | cut -c1-300)"
}
e2e_pass() { _n=$1; shift; e2e_result "$_n" pass "$@"; }
e2e_fail() { _n=$1; shift; e2e_result "$_n" fail "$@"; }

# e2e_check NAME CMD [ARG...]: run CMD, echo its output prefixed with "[NAME] " (the host
# shows these lines when the check fails) and keep it in $E2E_OUT/NAME.out; pass iff it
# exits 0. Detail is the last output line.
e2e_check() {
  _c=$1; shift
  echo "E2E-CHECK name=$_c"
  "$@" > "$E2E_OUT/$_c.out" 2>&1; _rc=$?
  sed "s/^/[$_c] /" "$E2E_OUT/$_c.out"
  if [ $_rc = 0 ]; then e2e_pass "$_c" "$(tail -n1 "$E2E_OUT/$_c.out")"
  else e2e_fail "$_c" "exit $_rc: $(tail -n1 "$E2E_OUT/$_c.out")"; fi
  return $_rc
}

# e2e_file NAME PATH: carry a file back to the host (it lands in RUN/files/NAME). The host
# checks size and sha256, so a line lost or garbled on the console fails the run.
e2e_file() {
  if [ ! -f "$2" ]; then e2e_fail "file:$1" "no file $2"; return 1; fi
  echo "E2E-BEGIN-FILE name=$1 size=$(wc -c < "$2" | tr -d ' ') sha256=$(sha256sum "$2" | cut -d' ' -f1)"
  base64 "$2"
  echo "E2E-END-FILE name=$1"
}

# e2e_wait_for SECONDS CMD...: poll CMD until it succeeds; fail after SECONDS of uptime
# (not a count of polls: under emulation each poll's fork and exec takes a while).
e2e_wait_for() {
  _end=$(( $(cut -d. -f1 /proc/uptime) + $1 )); shift
  while :; do
    "$@" && return 0
    [ "$(cut -d. -f1 /proc/uptime)" -lt $_end ] || return 1
    usleep 100000
  done
}

# e2e_domid NAME: the domain id of a running domain, or nothing.
e2e_domid() { xl domid "$1" 2>/dev/null; }

# e2e_xl_guest NAME CFG EXPECT: the xl path for one guest, as checks "xl-NAME-*":
# `xl create -p` (paused, so Xenstore can be read before the guest runs and powers off),
# `xl list` shows the cfg's memory and vcpus, Xenstore dumps in `xenstore-ls -fp` form (full
# paths and permissions, values never cut; files xenstore-NAME.txt for /local/domain/ID,
# xenstore-all-NAME.txt for the whole tree), unpause, the guest's console
# shows EXPECT, the domain goes away (on_poweroff=destroy). Console log: file console-NAME.
e2e_xl_guest() {
  _g=$1 _cfg=$2 _want=$3
  e2e_check "xl-$_g-create" xl create -p "$_cfg" || return 1
  _id=$(e2e_domid "$_g")
  _mem=$(sed -n 's/^memory *= *\([0-9]*\).*/\1/p' "$_cfg"); _cpu=$(sed -n 's/^vcpus *= *\([0-9]*\).*/\1/p' "$_cfg")
  e2e_check "xl-$_g-list" sh -c "xl list $_g 2>&1 | awk -v m=$_mem -v c=$_cpu '{ print }
    NR == 2 { if (\$3 != m || \$4 != c) { print \"want memory \" m \" vcpus \" c \", got \" \$3 \" \" \$4; exit 1 }
              print \"memory \" \$3 \" vcpus \" \$4 }
    END { if (NR < 2) { print \"not in xl list\"; exit 1 } }'"
  xenstore-ls -fp "/local/domain/$_id" > "$E2E_OUT/xenstore-$_g.txt" 2>&1
  xenstore-ls -fp > "$E2E_OUT/xenstore-all-$_g.txt" 2>&1
  e2e_check "xl-$_g-xenstore" sh -c "grep -q '^/local/domain/$_id/name = \"$_g\"' $E2E_OUT/xenstore-$_g.txt && grep -c . $E2E_OUT/xenstore-$_g.txt | sed 's/$/ nodes/'"
  e2e_file "xenstore-$_g.txt" "$E2E_OUT/xenstore-$_g.txt"
  e2e_file "xenstore-all-$_g.txt" "$E2E_OUT/xenstore-all-$_g.txt"
  e2e_check "xl-$_g-unpause" xl unpause "$_g"
  _log=/var/log/xen/console/guest-$_g.log
  e2e_mark "guest-$_g-unpaused"
  if e2e_wait_for 120 grep -q "$_want" "$_log" 2>/dev/null; then
    e2e_pass "xl-$_g-printed" "$(grep -m1 "$_want" "$_log")"
  else
    e2e_fail "xl-$_g-printed" "no '$_want' in $_log within 120 s; console tail: $(tail -n5 "$_log" 2>/dev/null)"
  fi
  e2e_mark "guest-$_g-printed"
  if e2e_wait_for 60 sh -c "! xl domid $_g >/dev/null 2>&1"; then e2e_pass "xl-$_g-gone" "domain $_id destroyed after poweroff"
  else e2e_fail "xl-$_g-gone" "domain $_id still there after 60 s"; xl destroy "$_g"; fi
  [ -f "$_log" ] && e2e_file "console-$_g" "$_log"
  return 0
}
