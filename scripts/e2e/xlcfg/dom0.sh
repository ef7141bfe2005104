# dom0 half of the xl.cfg oracle (docs/e2e.md, "The xl.cfg oracle"). Sourced by the dom0
# /init after lib.sh. Payload in $E2E_PAYLOAD/xlcfg: the corpus (*.cfg; line 2 of each says
# "# domb: accepts" or "# domb: refuses KEY").
#
# 1. Every file through `xl -N create FILE` (the libxl_domain_config xl builds, as libxl's
#    JSON), then all of them through one `domb config import-xl FILES --compare-xl DIR`
#    (domb's libxl_domain_config through the same generator, compared field by field where
#    xl took the file; where xl refused it, domb must refuse it too). Verdict per file, in
#    verdicts.txt:
#      MATCH       domb's JSON equals xl's (after libxl's defaults; accepted differences listed)
#      REFUSED     domb refused the file, naming the key the corpus says (xl accepts it or not)
#      DIFFERS     both accept it, fields differ (listed)
#      WRONG-KEY   domb refused it without naming the expected key
#      XL-REFUSES  xl refuses a file domb accepts
#      UNEXPECTED  domb refused a file the corpus says it accepts
#    The archive of every output goes back to the host (host-report.sh writes the report).
# 2. libxl's own choice of disk backend for the deprecated prefixes (`xl -vvv create -p`
#    logs "using backend"), on a block device node and on a raw file, against the backend
#    of the vbd in domb's Xenstore plan.
_x=$E2E_PAYLOAD/xlcfg
_xo=$E2E_OUT/xlcfg
rm -rf "$_xo"; mkdir -p "$_xo/files"
: > "$_xo/verdicts.txt"
xl info > "$_xo/xl-info.txt" 2>&1

# Every file through `xl -N create`: NAME.json where xl takes it, NAME.xl.err either way.
xlcfg_xl() {
  mkdir -p "$_xo/xl"
  for _f in "$_x"/*.cfg; do
    _b=$(basename "$_f" .cfg)
    if xl -N create "$_f" > "$_xo/xl/$_b.out" 2> "$_xo/files/$_b.xl.err"; then
      mv "$_xo/xl/$_b.out" "$_xo/xl/$_b.json"
    else
      rm -f "$_xo/xl/$_b.out"
    fi
  done
}

# The verdict of one file from domb's lines ("FILE: matches xl", "FILE: differs: ...",
# "FILE: refused: MESSAGE", "FILE: xl refuses it, domb accepts it").
xlcfg_verdict() {
  _f=$1 _b=$(basename "$1" .cfg)
  _want=$(sed -n 's/^# domb: //p' "$_f" | head -n1)
  _key=""; case $_want in "refuses "*) _key=${_want#refuses };; esac
  _xl=refuses; [ -f "$_xo/xl/$_b.json" ] && _xl=accepts
  grep -F "$_f: " "$_xo/compare.txt" | sed "s#^$_f: ##" > "$_xo/files/$_b.compare"
  if grep -q '^matches xl$' "$_xo/files/$_b.compare"; then _v=MATCH
  elif grep -q '^differs: ' "$_xo/files/$_b.compare"; then _v=DIFFERS
  elif grep -q '^xl refuses it, domb accepts it$' "$_xo/files/$_b.compare"; then _v=XL-REFUSES
  elif grep -q '^refused: ' "$_xo/files/$_b.compare"; then
    if [ -n "$_key" ] && grep '^refused: ' "$_xo/files/$_b.compare" | grep -qF -- "$_key"; then _v=REFUSED
    elif [ -n "$_key" ]; then _v=WRONG-KEY
    else _v=UNEXPECTED; fi
  else _v=NO-ANSWER; fi
  echo "$_v $_b xl=$_xl${_key:+ key=$_key}" >> "$_xo/verdicts.txt"
}

# xlcfg_backend NAME PREFIX TARGET: libxl's backend for the disk PREFIX:TARGET (from its
# debug log; the build may fail later, the choice is made first) and domb's (the backend
# directory of the vbd in its Xenstore plan), as "NAME libxl=X domb=Y".
xlcfg_backend() {
  _n=$1 _cfg=$_xo/backend-$1.cfg
  # A kernel that does not exist: libxl picks the disk backend right after making the
  # domain, then fails to build it and tears it down (no hotplug script, no backend driver).
  printf 'name = "xlcfg-%s"\nkernel = "/nonexistent/xlcfg-kernel"\nmemory = 32\ndisk = [ '"'"'%s%s,xvda,w'"'"' ]\n' \
    "$_n" "$2" "$3" > "$_cfg"
  timeout -s KILL 120 xl -vvv create -p "$_cfg" > "$_xo/backend-$_n.log" 2>&1
  xl destroy "xlcfg-$_n" >/dev/null 2>&1
  _libxl=$(sed -n 's/.*Disk vdev=xvda, using backend \([a-z]*\).*/\1/p' "$_xo/backend-$_n.log" | head -n1)
  # The plan straight from the xl.cfg file: a .dts would need dtc, which dom0 does not have
  # (the first run of this check found domb=none for every pair that way).
  domb xenstore plan "$_cfg" --json > "$_xo/backend-$_n.plan" 2>> "$_xo/backend-$_n.log"
  _domb=$(grep -oE '/local/domain/0/backend/(vbd|qdisk)/' "$_xo/backend-$_n.plan" 2>/dev/null | head -n1 | cut -d/ -f6)
  case $_domb in vbd) _domb=phy;; esac
  echo "$_n libxl=${_libxl:-none} domb=${_domb:-none}" >> "$_xo/backends.txt"
}

e2e_mark xlcfg-oracle-start
xlcfg_xl
e2e_mark xlcfg-oracle-xl-done
# One domb run for the whole corpus (a program start under TCG costs seconds).
domb config import-xl "$_x"/*.cfg --compare-xl "$_xo/xl" > "$_xo/compare.txt" 2> "$_xo/domb.err"
for _f in "$_x"/*.cfg; do xlcfg_verdict "$_f"; done
e2e_mark xlcfg-oracle-end
_total=$(wc -l < "$_xo/verdicts.txt")
_bad=$(grep -cvE '^(MATCH|REFUSED) ' "$_xo/verdicts.txt")
_summary=$(cut -d' ' -f1 "$_xo/verdicts.txt" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
echo "E2E-CHECK name=xlcfg-oracle"
sed 's/^/[xlcfg-oracle] /' "$_xo/verdicts.txt" | grep -vE '^\[xlcfg-oracle\] (MATCH|REFUSED) '
if [ "$_bad" = 0 ]; then e2e_pass xlcfg-oracle "$_total files: $_summary"
else e2e_fail xlcfg-oracle "$_total files: $_summary"; fi
(cd "$E2E_OUT" && tar -czf xlcfg.tar.gz xlcfg)
e2e_file xlcfg-oracle.tar.gz "$E2E_OUT/xlcfg.tar.gz"

# libxl's disk backend for the deprecated prefixes, on a block device node and on a file.
: > "$_xo/backends.txt"
mknod "$_xo/blockdev" b 7 0 2>/dev/null
dd if=/dev/zero of="$_xo/guest.img" bs=1024 count=1024 2>/dev/null
for _p in tap:aio: tap2:aio: aio: file:; do
  xlcfg_backend "$(echo "$_p" | tr -d ':' )-block" "$_p" "$_xo/blockdev"
  xlcfg_backend "$(echo "$_p" | tr -d ':' )-file" "$_p" "$_xo/guest.img"
done
echo "E2E-CHECK name=xlcfg-disk-backend"
sed 's/^/[xlcfg-disk-backend] /' "$_xo/backends.txt"
if awk '{ split($2, a, "="); split($3, b, "="); if (a[2] == "none" || a[2] != b[2]) bad = 1 } END { exit bad }' "$_xo/backends.txt"; then
  e2e_pass xlcfg-disk-backend "libxl's choice = domb's for $(wc -l < "$_xo/backends.txt") prefix/target pairs"
else
  e2e_fail xlcfg-disk-backend "$(grep -c . "$_xo/backends.txt") pairs: $(tr '\n' ';' < "$_xo/backends.txt")"
fi
e2e_file xlcfg-backends.txt "$_xo/backends.txt"
for _l in "$_xo"/backend-*.log; do echo "== $_l"; grep -v '^libxl: debug\|^xl: debug' "$_l" | tail -n 5; done > "$_xo/backend-logs.txt" 2>&1
e2e_file xlcfg-backend-logs.txt "$_xo/backend-logs.txt"
