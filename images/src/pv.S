/*
 * domb test guest: a 64-bit Xen PV kernel.
 *
 * Writes one known line to the Xen PV console ring (start_info->console.domU), notifies
 * the console event channel, waits (bounded) for xenconsoled to drain the ring, and
 * powers itself off with SCHEDOP_shutdown. It also tries HYPERVISOR_console_io first,
 * which only a debug hypervisor honours for a domU.
 *
 * Entry (Xen PV ABI, x86_64): long mode, paging on with the kernel mapped from VIRT_BASE
 * (0 here), %rsi = virtual address of start_info. Hypercalls go through the hypercall
 * page Xen fills in (XEN_ELFNOTE_HYPERCALL_PAGE); a debug Xen clobbers the argument
 * registers, so state lives in %rbx/%rbp/%r12-%r15.
 */
#include "xen.h"

ELFNOTE(XEN_ELFNOTE_GUEST_OS,       .asciz "domb-test-pv")
ELFNOTE(XEN_ELFNOTE_GUEST_VERSION,  .asciz "1")
ELFNOTE(XEN_ELFNOTE_XEN_VERSION,    .asciz "xen-3.0")
ELFNOTE(XEN_ELFNOTE_LOADER,         .asciz "generic")
ELFNOTE(XEN_ELFNOTE_VIRT_BASE,      .quad 0)
ELFNOTE(XEN_ELFNOTE_PADDR_OFFSET,   .quad 0)
ELFNOTE(XEN_ELFNOTE_ENTRY,          .quad _start)
ELFNOTE(XEN_ELFNOTE_HYPERCALL_PAGE, .quad hypercall_page)
ELFNOTE(XEN_ELFNOTE_SUSPEND_CANCEL, .long 1)

#define HYPERCALL(nr) hypercall_page + (nr) * HYPERCALL_STUB_SIZE

    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    cld
    lea     stack_top(%rip), %rsp
    mov     %rsi, %r15                      /* start_info */

    /* Debug hypervisors print this; release builds drop a domU's console_io. */
    mov     $CONSOLEIO_write, %edi
    mov     $message_length, %esi
    lea     message(%rip), %rdx
    call    HYPERCALL(__HYPERVISOR_console_io)

    mov     START_INFO_CONSOLE_MFN(%r15), %rax
    test    %rax, %rax
    jz      shutdown                        /* no PV console */
    /* The ring is mapped at VIRT_BASE + pfn * 4096; pfn = machine_to_phys_mapping[mfn]. */
    movabs  $MACH2PHYS_VIRT_START, %rbx
    mov     (%rbx,%rax,8), %rax
    shl     $12, %rax
    mov     %rax, %r14                      /* struct xencons_interface * */
    mov     START_INFO_CONSOLE_EVTCHN(%r15), %r13d

    /* Copy the message into out[], then publish out_prod. */
    mov     XENCONS_OUT_PROD(%r14), %edx
    lea     message(%rip), %rsi
    mov     $message_length, %ecx
1:  mov     %edx, %eax
    sub     XENCONS_OUT_CONS(%r14), %eax
    cmp     $XENCONS_OUT_SIZE, %eax
    jae     2f                              /* ring full: publish what fits */
    mov     %edx, %eax
    and     $(XENCONS_OUT_SIZE - 1), %eax
    movzbl  (%rsi), %r8d
    mov     %r8b, XENCONS_OUT(%r14,%rax)
    inc     %rsi
    inc     %edx
    dec     %ecx
    jnz     1b
2:  sfence                                  /* data before index (x86 keeps store order anyway) */
    mov     %edx, XENCONS_OUT_PROD(%r14)

    mov     %r13d, send_port(%rip)
    mov     $EVTCHNOP_send, %edi
    lea     send_port(%rip), %rsi
    call    HYPERCALL(__HYPERVISOR_event_channel_op)

    /* Give xenconsoled the chance to read the ring before the domain goes away. */
    mov     $DRAIN_YIELDS, %r12d
3:  mov     XENCONS_OUT_CONS(%r14), %eax
    cmp     XENCONS_OUT_PROD(%r14), %eax
    je      shutdown
    mov     $SCHEDOP_yield, %edi
    xor     %esi, %esi
    call    HYPERCALL(__HYPERVISOR_sched_op)
    dec     %r12d
    jnz     3b

shutdown:
    movl    $SHUTDOWN_poweroff, shutdown_reason(%rip)
    mov     $SCHEDOP_shutdown, %edi
    lea     shutdown_reason(%rip), %rsi
    call    HYPERCALL(__HYPERVISOR_sched_op)
4:  pause                                   /* not reached */
    jmp     4b

    .section .rodata
message:
    .ascii  "domb test guest: pv kernel booted\n"
    .set    message_length, . - message

    .data
    .balign 8
send_port:       .long 0                    /* struct evtchn_send */
shutdown_reason: .long 0                    /* struct sched_shutdown */

    /* Xen writes the hypercall stubs here (XEN_ELFNOTE_HYPERCALL_PAGE). */
    .section .text.hypercall, "ax"
    .balign 4096
    .globl hypercall_page
hypercall_page:
    .fill   4096, 1, 0xcc

    .section .bss.stack, "aw", @nobits
    .balign 4096
    .skip   16384
stack_top:
