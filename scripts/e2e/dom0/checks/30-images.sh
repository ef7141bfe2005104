# The project's own test guests (images/, built by the harness) through xl: PV and PVH.
# These are what `domb boot` bundles; here xl starts them, as the baseline.
if [ -f /e2e/images/pv-kernel.elf ]; then
  for _t in pv pvh; do
    cat > /etc/xen/domb-$_t.cfg <<CFG
name = "domb-$_t"
type = "$_t"
kernel = "/e2e/images/$_t-kernel.elf"
memory = 32
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
CFG
    e2e_xl_guest domb-$_t /etc/xen/domb-$_t.cfg "domb test guest: $_t kernel booted"
  done
else
  e2e_fail images "no /e2e/images/pv-kernel.elf (images/ not built)"
fi
