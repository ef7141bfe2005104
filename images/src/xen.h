/*
 * domb test guests: the few Xen ABI constants they use (from Xen's public headers,
 * xen/include/public/{xen.h,elfnote.h,event_channel.h,sched.h,hvm/params.h,hvm/hvm_op.h,
 * io/console.h}). Included by the .S files (C preprocessor only).
 */
#ifndef DOMB_GUEST_XEN_H
#define DOMB_GUEST_XEN_H

/* Hypercall numbers (public/xen.h). Each stub in the hypercall page is 32 bytes. */
#define __HYPERVISOR_console_io        18
#define __HYPERVISOR_sched_op          29
#define __HYPERVISOR_event_channel_op  32
#define __HYPERVISOR_hvm_op            34
#define HYPERCALL_STUB_SIZE            32

#define CONSOLEIO_write      0
#define SCHEDOP_yield        0
#define SCHEDOP_shutdown     2
#define SHUTDOWN_poweroff    0
#define EVTCHNOP_send        4
#define HVMOP_get_param      1
#define DOMID_SELF           0x7FF0
#define HVM_PARAM_CONSOLE_PFN     17
#define HVM_PARAM_CONSOLE_EVTCHN  18

/* struct xencons_interface (public/io/console.h). */
#define XENCONS_OUT          1024
#define XENCONS_OUT_SIZE     2048
#define XENCONS_OUT_CONS     3080
#define XENCONS_OUT_PROD     3084

/* struct start_info (public/xen.h), x86_64 layout. */
#define START_INFO_CONSOLE_MFN     72
#define START_INFO_CONSOLE_EVTCHN  80

/* 64-bit PV: the read-only machine-to-physical table (public/arch-x86/xen-x86_64.h). */
#define MACH2PHYS_VIRT_START  0xFFFF800000000000

/* struct hvm_start_info magic (public/arch-x86/hvm/start_info.h). */
#define XEN_HVM_START_MAGIC_VALUE  0x336ec578

/* Xen ELF note types (public/elfnote.h). */
#define XEN_ELFNOTE_ENTRY           1
#define XEN_ELFNOTE_HYPERCALL_PAGE  2
#define XEN_ELFNOTE_VIRT_BASE       3
#define XEN_ELFNOTE_PADDR_OFFSET    4
#define XEN_ELFNOTE_XEN_VERSION     5
#define XEN_ELFNOTE_GUEST_OS        6
#define XEN_ELFNOTE_GUEST_VERSION   7
#define XEN_ELFNOTE_LOADER          8
#define XEN_ELFNOTE_FEATURES        10
#define XEN_ELFNOTE_SUSPEND_CANCEL  14
#define XEN_ELFNOTE_PHYS32_ENTRY    18

/* One ELF note: name "Xen", 4-byte aligned (as Linux's include/linux/elfnote.h). */
#define ELFNOTE(type, desc)                     \
    .pushsection .note.Xen, "a", @note;         \
    .balign 4;                                  \
    .long 2f - 1f;                              \
    .long 4f - 3f;                              \
    .long type;                                 \
1:  .asciz "Xen";                               \
2:  .balign 4;                                  \
3:  desc;                                       \
4:  .balign 4;                                  \
    .popsection

/* How many times a guest yields while waiting for xenconsoled to drain the ring. */
#define DRAIN_YIELDS  100000

#endif
