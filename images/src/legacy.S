/*
 * domb inspection fixture (not meant to boot): an ELF with no Xen notes and a legacy
 * `__xen_guest` section, the pre-Xen-3.0.4 way to describe a PV kernel
 * (libelf-dominfo.c elf_xen_parse_guest_info).
 */
    .section __xen_guest, "a"
    .asciz "GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0x0,ELF_PADDR_OFFSET=0x0,LOADER=generic"

    .text
    .code64
    .globl _start
_start:
    jmp     _start
