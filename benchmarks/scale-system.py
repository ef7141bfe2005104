#!/usr/bin/env python3
"""Writes a Hyperlaunch launch description of N PV domains for benchmarks/scale.sh and the
1024-domain test: a xenstore-less system where every domain has the same kernel (one
file, KERNEL), a console, a vif and a vbd, all backed by dom0.

    scale-system.py N KERNEL > system.dts
"""
import sys


def main():
    count, kernel = int(sys.argv[1]), sys.argv[2]
    out = ['/dts-v1/;', '', '/ {', '\tchosen {', '\t\thypervisor {',
           '\t\t\tcompatible = "hypervisor,xen", "xen,x86";']
    for i in range(count):
        domid = i + 1
        out += [
            f'\t\t\tguest{i} {{',
            '\t\t\t\tcompatible = "xen,domain";',
            f'\t\t\t\tdomid = <{domid}>;',
            '\t\t\t\tmode = <5>;\t\t/* PV, 64-bit */',
            '\t\t\t\tmemory = <0x0 0x10000>;\t/* 64 MiB */',
            '\t\t\t\tcpus = <1>;',
            '\t\t\t\tkernel {',
            '\t\t\t\t\tcompatible = "module,kernel", "multiboot,module";',
            f'\t\t\t\t\tdomb,path = "{kernel}";',
            f'\t\t\t\t\tbootargs = "console=hvc0 root=/dev/xvda1 ro guest={i}";',
            '\t\t\t\t};',
            '\t\t\t\tconsole-0 { compatible = "domb,console"; };',
            '\t\t\t\tvif-0 {',
            '\t\t\t\t\tcompatible = "domb,vif";',
            f'\t\t\t\t\tmac = "00:16:3e:{domid >> 16 & 0xff:02x}:{domid >> 8 & 0xff:02x}:{domid & 0xff:02x}";',
            '\t\t\t\t\tbridge = "xenbr0";',
            '\t\t\t\t};',
            '\t\t\t\tvbd-0 {',
            '\t\t\t\t\tcompatible = "domb,vbd";',
            f'\t\t\t\t\ttarget = "/dev/vg0/guest{i}-root";',
            '\t\t\t\t\tvdev = "xvda";',
            '\t\t\t\t\tbackendtype = "phy";',
            '\t\t\t\t};',
            '\t\t\t};',
        ]
    out += ['\t\t};', '\t};', '};', '']
    sys.stdout.write('\n'.join(out))


main()
