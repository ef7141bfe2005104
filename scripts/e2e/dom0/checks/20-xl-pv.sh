# A PV guest through xl: the baseline that domb's own domain building is compared with.
cat > /etc/xen/e2e-pv.cfg <<CFG
name = "e2e-pv"
type = "pv"
kernel = "$E2E_GUEST/vmlinuz"
ramdisk = "$E2E_GUEST/initrd.gz"
extra = "console=hvc0 loglevel=4 e2e_name=e2e-pv"
memory = 256
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
CFG
e2e_xl_guest e2e-pv /etc/xen/e2e-pv.cfg "E2E-GUEST-HELLO name=e2e-pv type=PV"
