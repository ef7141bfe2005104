/*
 * domb test guest: a Xen PVH kernel.
 *
 * Entry (docs/misc/pvh.pandoc): 32-bit protected mode, paging off, flat segments,
 * %ebx = physical address of struct hvm_start_info. The guest:
 *   1. writes its line to the HVM debug port 0xe9 (Xen logs it; QEMU's debugcon too);
 *   2. finds Xen's CPUID leaves ("XenVMMXenVMM" at 0x40000000 + n*0x100), installs the
 *      hypercall page through the MSR from leaf base+2;
 *   3. reads HVM_PARAM_CONSOLE_PFN/EVTCHN with HVMOP_get_param, writes the line to the PV
 *      console ring, notifies the event channel, waits (bounded) for it to drain;
 *   4. powers off with SCHEDOP_shutdown.
 * Not on Xen, it stops at step 1 and halts. A debug Xen clobbers the hypercall argument
 * registers (%ebx %ecx %edx %esi %edi), so state lives in memory and %ebp.
 */
#include "xen.h"

ELFNOTE(XEN_ELFNOTE_GUEST_OS,       .asciz "domb-test-pvh")
ELFNOTE(XEN_ELFNOTE_GUEST_VERSION,  .asciz "1")
ELFNOTE(XEN_ELFNOTE_PHYS32_ENTRY,   .long pvh_start)

#define HYPERCALL(nr) hypercall_page + (nr) * HYPERCALL_STUB_SIZE

    .section .text.entry, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cld
    mov     $stack_top, %esp
    mov     %ebx, start_info

    /* 1. Debug port. */
    mov     $message, %esi
    mov     $message_length, %ecx
1:  lodsb
    outb    %al, $0xe9
    loop    1b

    /* 2. Xen CPUID leaves and the hypercall page. */
    mov     $0x40000000, %ebp
2:  mov     %ebp, %eax
    cpuid
    cmp     $0x566e6558, %ebx               /* "XenV" */
    jne     3f
    cmp     $0x65584d4d, %ecx               /* "MMXe" */
    jne     3f
    cmp     $0x4d4d566e, %edx               /* "nVMM" */
    jne     3f
    lea     2(%ebp), %edx
    cmp     %edx, %eax                      /* leaf base+2 must exist */
    jb      3f
    jmp     4f
3:  add     $0x100, %ebp
    cmp     $0x40010000, %ebp
    jb      2b
    jmp     halt                            /* not running on Xen */
4:  lea     2(%ebp), %eax
    cpuid                                   /* %eax = pages, %ebx = MSR */
    mov     %ebx, %ecx
    mov     $hypercall_page, %eax
    xor     %edx, %edx
    wrmsr

    /* 3. The PV console from HVM params. */
    movl    $HVM_PARAM_CONSOLE_EVTCHN, param_index
    call    get_param
    jnz     shutdown
    mov     param_value, %eax
    mov     %eax, send_port
    movl    $HVM_PARAM_CONSOLE_PFN, param_index
    call    get_param
    jnz     shutdown
    mov     param_value, %eax
    test    %eax, %eax
    jz      shutdown                        /* no console page */
    cmpl    $0, param_value + 4
    jne     shutdown                        /* above 4 GiB: unreachable without paging */
    cmp     $0x100000, %eax
    jae     shutdown
    shl     $12, %eax
    mov     %eax, %ebp                      /* struct xencons_interface * */

    mov     XENCONS_OUT_PROD(%ebp), %edx
    mov     $message, %esi
    mov     $message_length, %ecx
5:  mov     %edx, %eax
    sub     XENCONS_OUT_CONS(%ebp), %eax
    cmp     $XENCONS_OUT_SIZE, %eax
    jae     6f
    mov     %edx, %eax
    and     $(XENCONS_OUT_SIZE - 1), %eax
    movb    (%esi), %bl
    movb    %bl, XENCONS_OUT(%ebp,%eax)
    inc     %esi
    inc     %edx
    dec     %ecx
    jnz     5b
6:  sfence
    mov     %edx, XENCONS_OUT_PROD(%ebp)

    mov     $EVTCHNOP_send, %ebx
    mov     $send_port, %ecx
    call    HYPERCALL(__HYPERVISOR_event_channel_op)

    movl    $DRAIN_YIELDS, drain_count
7:  mov     XENCONS_OUT_CONS(%ebp), %eax
    cmp     XENCONS_OUT_PROD(%ebp), %eax
    je      shutdown
    mov     $SCHEDOP_yield, %ebx
    xor     %ecx, %ecx
    call    HYPERCALL(__HYPERVISOR_sched_op)
    decl    drain_count
    jnz     7b

    /* 4. Power off. */
shutdown:
    movl    $SHUTDOWN_poweroff, shutdown_reason
    mov     $SCHEDOP_shutdown, %ebx
    mov     $shutdown_reason, %ecx
    call    HYPERCALL(__HYPERVISOR_sched_op)
halt:
    cli
    hlt
    jmp     halt

/* HVMOP_get_param for param_index; ZF set on success. */
get_param:
    movw    $DOMID_SELF, param_domid
    movl    $0, param_value
    movl    $0, param_value + 4
    mov     $HVMOP_get_param, %ebx
    mov     $param_domid, %ecx
    call    HYPERCALL(__HYPERVISOR_hvm_op)
    test    %eax, %eax
    ret

    .section .rodata
message:
    .ascii  "domb test guest: pvh kernel booted\n"
    .set    message_length, . - message

    .data
    .balign 8
param_domid:     .word 0                    /* struct xen_hvm_param */
                 .word 0
param_index:     .long 0
param_value:     .quad 0
start_info:      .long 0
send_port:       .long 0                    /* struct evtchn_send */
shutdown_reason: .long 0                    /* struct sched_shutdown */
drain_count:     .long 0

    /* Filled by Xen when the MSR is written. */
    .section .bss.hypercall, "aw", @nobits
    .balign 4096
hypercall_page:
    .skip   4096

    .section .bss.stack, "aw", @nobits
    .balign 16
    .skip   16384
stack_top:
