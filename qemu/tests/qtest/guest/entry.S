/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The freestanding test guest: a 64 KiB flat -bios image that starts at
 * the reset vector in 16-bit real mode, optionally enters 32-bit flat
 * protected mode and then 64-bit long mode, reports each stage on the
 * debug console and in its RAM mailbox (guest-abi.h), and stops in the
 * mode the qtest asked for: it writes GUEST_EXIT_OK to isa-debug-exit
 * (which ends QEMU when that device is present) and halts.  No firmware,
 * no C runtime, no data section: the image is ROM, so everything it
 * writes lives in guest RAM.
 */

#include "guest-abi.h"

#define MB(field)       (GUEST_MAILBOX_GPA + (field))
#define ROFF(sym)       ((sym) - GUEST_IMAGE_BASE)  /* real-mode CS offset */

#define MSR_EFER        0xc0000080
#define EFER_LME        (1 << 8)
#define CR0_PE          (1 << 0)
#define CR0_PG          (1 << 31)
#define CR4_PAE         (1 << 5)
#define CR4_MCE         (1 << 6)
#define MSR_MCG_CAP     0x179
#define MSR_MCG_STATUS  0x17a
#define MSR_MCG_CTL     0x17b
#define MSR_MC0_CTL     0x400
#define MCG_CTL_P       (1 << 8)
#define MCG_STATUS_EIPV (1 << 1)
#define MC_VECTOR       18

/*
 * The local APIC (xAPIC, at its reset base) and the APs' start: the
 * image is also mapped below 1 MiB at 0xf0000 (the ISA BIOS alias of a
 * 64 KiB -bios), so ap_entry16, at image offset 0x1000 (guest.ld), is
 * SIPI vector 0xf1.
 */
#define APIC_BASE       0xfee00000
#define APIC_SVR        0xf0
#define APIC_ICR_LO     0x300
#define APIC_ICR_HI     0x310
#define ICR_BUSY        (1 << 12)
#define ICR_INIT_OTHERS 0x000c4500      /* INIT, assert, all but self */
#define ICR_SIPI_OTHERS 0x000c4600      /* start-up, all but self */
#define AP_VECTOR       0xf1
#define ISA_BIOS_SEG    0xf000

/* Flat data segments for DS, ES, FS, GS and SS (32-bit code). */
.macro load_data_segments
        movw    $GUEST_SEL_DATA, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
.endm

/* ------------------------------------------------------------------ */
        .section .text.entry16, "ax"
        .code16
        .globl entry16
entry16:
        cli
        cld
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $GUEST_STACK_TOP, %sp

        /* Under KVM, make the mailbox page shared (see guest-abi.h). */
        movl    $0x40000000, %eax
        cpuid
        cmpl    $GUEST_KVM_SIGNATURE_EBX, %ebx
        jne     1f
        movl    $0x40000001, %eax
        cpuid
        movl    %edx, %edi
        movl    %eax, %esi
        movl    $GUEST_HC_MAP_GPA_RANGE, %eax
        movl    $GUEST_MAILBOX_GPA, %ebx
        movl    $1, %ecx
        xorl    %edx, %edx
        btl     $GUEST_CONTRACT_HC_BIT, %edi
        jc      2f
        btl     $GUEST_KVM_FEATURE_MAP_GPA, %esi
        jnc     1f
        vmcall
        jmp     1f
2:      outl    %eax, $GUEST_CONTRACT_HC_PORT
1:
        movl    $GUEST_MAGIC, MB(MB_MAGIC)
        movl    $GUEST_MODE_REAL, MB(MB_STAGE)

        /* Print msg_real: CS-relative, since DS is 0 and the ROM is high. */
        movw    $ROFF(msg_real), %si
1:      movb    %cs:(%si), %al
        testb   %al, %al
        jz      2f
        outb    %al, $GUEST_DEBUGCON_PORT
        incw    %si
        jmp     1b
2:
        cmpl    $GUEST_MODE_REAL, MB(MB_REQ_MODE)
        je      op16

        /* Enter 32-bit flat protected mode. */
        lgdtl   %cs:ROFF(gdt_desc)
        movl    %cr0, %eax
        orl     $CR0_PE, %eax
        movl    %eax, %cr0
        ljmpl   $GUEST_SEL_CODE32, $entry32

/*
 * Real-mode touch: FS:BX (and ES:DI for insb) address MB_REQ_ADDR, which
 * must be below 1 MiB.
 */
op16:
        movl    MB(MB_REQ_ADDR), %eax
        movl    %eax, %ebx
        shrl    $4, %eax
        movw    %ax, %fs
        movw    %ax, %es
        andw    $0xf, %bx
        movl    MB(MB_REQ_OP), %ecx
        jecxz   done16
        movl    $GUEST_OP_MARK, MB(MB_OP_STARTED)
        cmpl    $GUEST_OP_READ, %ecx
        jne     1f
        movzbl  %fs:(%bx), %eax
        movl    %eax, MB(MB_OP_VALUE)
        jmp     9f
1:      cmpl    $GUEST_OP_WRITE, %ecx
        jne     2f
        movb    $GUEST_WRITE_BYTE, %fs:(%bx)
        jmp     9f
2:      cmpl    $GUEST_OP_FETCH, %ecx
        jne     3f
        movw    %bx, MB(MB_FAR_PTR)
        movw    %fs, MB(MB_FAR_PTR) + 2
        lcallw  *MB(MB_FAR_PTR)
        jmp     9f
3:      cmpl    $GUEST_OP_INSB, %ecx
        jne     9f
        movw    %bx, %di
        movl    MB(MB_REQ_COUNT), %ecx
        movw    $GUEST_DEBUGCON_PORT, %dx
        rep insb
9:      movl    $GUEST_OP_MARK, MB(MB_OP_DONE)
        xorw    %ax, %ax
        movw    %ax, %es
done16:
        movl    $GUEST_DONE, MB(MB_DONE)
        movw    $GUEST_EXIT_PORT, %dx
        movl    $GUEST_EXIT_OK, %eax
        outl    %eax, %dx
3:      hlt
        jmp     3b

/* ------------------------------------------------------------------ */
        .text
        .code32
entry32:
        load_data_segments
        movl    $GUEST_STACK_TOP, %esp

        movl    $GUEST_MODE_PROT32, MB(MB_STAGE)
        movl    $msg_prot32, %esi
        call    puts32

        cmpl    $GUEST_MODE_PROT32, MB(MB_REQ_MODE)
        jne     1f
        call    op32
        jmp     done32
1:

        call    build_page_tables
        call    enable_paging64
        ljmpl   $GUEST_SEL_CODE64, $entry64

done32:
        movl    $GUEST_DONE, MB(MB_DONE)
        movl    $GUEST_EXIT_OK, %eax
        outl    %eax, $GUEST_EXIT_PORT
1:      hlt
        jmp     1b

/* An AP, in 32-bit protected mode: its stack, then long mode. */
ap_entry32:
        load_data_segments
        movl    $1, %eax
        lock xaddl %eax, MB(MB_AP_NEXT)
        cmpl    $GUEST_AP_MAX, %eax
        jae     ap_halt
        incl    %eax
        imull   $GUEST_AP_STACK_SIZE, %eax, %esp
        addl    $GUEST_AP_STACK_BASE, %esp
        call    enable_paging64         /* tables built by the BSP */
        ljmpl   $GUEST_SEL_CODE64, $ap_entry64
ap_halt:
        hlt
        jmp     ap_halt

/* The requested touch, in 32-bit protected mode. */
op32:
        movl    MB(MB_REQ_ADDR), %ebx
        movl    MB(MB_REQ_OP), %ecx
        jecxz   9f
        movl    $GUEST_OP_MARK, MB(MB_OP_STARTED)
        cmpl    $GUEST_OP_READ, %ecx
        jne     1f
        movl    $read32, MB(MB_OP_PC)
        movl    $read32_end, MB(MB_OP_PC_END)
read32: movzbl  (%ebx), %eax
read32_end:
        movl    %eax, MB(MB_OP_VALUE)
        jmp     8f
1:      cmpl    $GUEST_OP_WRITE, %ecx
        jne     2f
        movl    $write32, MB(MB_OP_PC)
        movl    $write32_end, MB(MB_OP_PC_END)
write32:
        movb    $GUEST_WRITE_BYTE, (%ebx)
write32_end:
        jmp     8f
2:      cmpl    $GUEST_OP_FETCH, %ecx
        jne     3f
        call    *%ebx
        jmp     8f
3:      cmpl    $GUEST_OP_INSB, %ecx
        jne     8f
        movl    %ebx, %edi
        movl    MB(MB_REQ_COUNT), %ecx
        movw    $GUEST_DEBUGCON_PORT, %dx
        rep insb
8:      movl    $GUEST_OP_MARK, MB(MB_OP_DONE)
9:      ret

/* Write the NUL-terminated string at %esi to the debug console. */
puts32:
        lodsb
        testb   %al, %al
        jz      1f
        outb    %al, $GUEST_DEBUGCON_PORT
        jmp     puts32
1:      ret

/*
 * Long-mode paging on the tables at GUEST_PT_BASE: PAE, CR3, EFER.LME,
 * CR0.PG.  Returns in compatibility mode; the caller far-jumps to its
 * 64-bit code.
 */
enable_paging64:
        movl    %cr4, %eax
        orl     $CR4_PAE, %eax
        movl    %eax, %cr4
        movl    $GUEST_PT_BASE, %eax
        movl    %eax, %cr3
        movl    $MSR_EFER, %ecx
        rdmsr
        orl     $EFER_LME, %eax
        wrmsr
        movl    %cr0, %eax
        orl     $CR0_PG, %eax
        movl    %eax, %cr0
        ret

/*
 * Identity-map the low 4 GiB with 2 MiB pages: PML4 at GUEST_PT_BASE,
 * PDPT after it, then four page directories.  Every level allows user
 * access, for GUEST_MODE_USER64.  The ROM at 4 GiB - 64 KiB
 * stays reachable, so the code keeps running at the same addresses.
 */
build_page_tables:
        movl    $GUEST_PT_BASE, %edi
        movl    $(6 * 4096 / 4), %ecx
        xorl    %eax, %eax
        rep stosl

        movl    $(GUEST_PT_BASE + 0x1000 + 0x7), GUEST_PT_BASE
        movl    $0, %ecx
1:      movl    %ecx, %eax
        shll    $12, %eax
        addl    $(GUEST_PT_BASE + 0x2000 + 0x7), %eax
        movl    %eax, (GUEST_PT_BASE + 0x1000)(,%ecx,8)
        incl    %ecx
        cmpl    $4, %ecx
        jb      1b

        xorl    %ecx, %ecx
2:      movl    %ecx, %eax
        shll    $21, %eax
        orl     $0x87, %eax             /* present, writable, user, 2 MiB */
        movl    %eax, (GUEST_PT_BASE + 0x2000)(,%ecx,8)
        incl    %ecx
        cmpl    $2048, %ecx
        jb      2b
        ret

/* ------------------------------------------------------------------ */
        .code64
entry64:
        movl    $GUEST_MODE_LONG64, MB(MB_STAGE)
        movl    $msg_long64, %esi       /* zero-extends: ROM is below 4G */
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, $GUEST_DEBUGCON_PORT
        jmp     1b
2:
        cmpl    $0, MB(MB_REQ_MCE)
        je      3f
        call    mce_build_idt
        call    mce_enable
3:
        cmpl    $0, MB(MB_REQ_APS)
        je      3f
        call    start_aps
3:
        cmpl    $GUEST_MODE_USER64, MB(MB_REQ_MODE)
        je      to_user64
        call    op64_times
        movl    $GUEST_DONE, MB(MB_DONE)
        movl    $GUEST_EXIT_OK, %eax
        outl    %eax, $GUEST_EXIT_PORT
3:      hlt
        jmp     3b

/*
 * INIT and start-up IPIs to every other vCPU, then wait until
 * MB_REQ_APS of them are in long mode.
 */
start_aps:
        movl    $APIC_BASE, %edi        /* zero-extends into %rdi */
        orl     $0x100, APIC_SVR(%rdi)  /* software-enable the APIC */
        movl    $0, APIC_ICR_HI(%rdi)
        movl    $ICR_INIT_OTHERS, APIC_ICR_LO(%rdi)
        call    icr_wait
        movl    $(ICR_SIPI_OTHERS | AP_VECTOR), APIC_ICR_LO(%rdi)
        call    icr_wait
        movl    $(ICR_SIPI_OTHERS | AP_VECTOR), APIC_ICR_LO(%rdi)
        call    icr_wait
1:      pause
        movl    MB(MB_APS_UP), %eax
        cmpl    MB(MB_REQ_APS), %eax
        jb      1b
        movl    $1, MB(MB_AP_GO)
        ret

icr_wait:
        testl   $ICR_BUSY, APIC_ICR_LO(%rdi)
        jnz     icr_wait
        ret

/* An AP in long mode: the requested touch too, then halt. */
ap_entry64:
        cmpl    $0, MB(MB_REQ_MCE)
        je      2f
        call    mce_enable
2:      lock incl MB(MB_APS_UP)
1:      pause
        cmpl    $0, MB(MB_AP_GO)
        je      1b
        call    op64_times
1:      hlt
        jmp     1b

/* op64, MB_REQ_MCE times when set (counted in MCE_TOUCHES), else once. */
op64_times:
        cmpl    $0, MB(MB_REQ_MCE)
        je      op64
        xorl    %ebp, %ebp
1:      call    op64
        call    mce_record
        incl    MCE_TOUCHES(%rsi)
        incl    %ebp
        cmpl    MB(MB_REQ_MCE), %ebp
        jb      1b
        ret

/* %rsi = this vCPU's MCE_RECORD (by initial APIC ID); clobbers eax-edx. */
mce_record:
        movl    $1, %eax
        cpuid
        shrl    $24, %ebx
        shll    $6, %ebx                /* MCE_RECORD_SIZE */
        leal    MB(MB_MCE_RECORDS)(%rbx), %esi
        ret

/* The IDT: vector 18 only, an interrupt gate to mce_handler. */
mce_build_idt:
        movl    $GUEST_IDT_BASE, %edi
        movl    $(4096 / 4), %ecx
        xorl    %eax, %eax
        rep stosl
        movl    $(GUEST_IDT_BASE + MC_VECTOR * 16), %edi
        movl    $mce_handler, %eax      /* in ROM, below 4 GiB */
        movw    %ax, (%rdi)
        movw    $GUEST_SEL_CODE64, 2(%rdi)
        movw    $0x8e00, 4(%rdi)        /* present, DPL 0, interrupt gate */
        shrl    $16, %eax
        movw    %ax, 6(%rdi)
        movl    $(GUEST_IDT_BASE + 4096 - 16), %edi
        movw    $(MC_VECTOR * 16 + 15), (%rdi)
        movq    $GUEST_IDT_BASE, %rax
        movq    %rax, 2(%rdi)
        ret

/* On this vCPU: the IDT, CR4.MCE, every bank reporting, none valid. */
mce_enable:
        lidt    (GUEST_IDT_BASE + 4096 - 16)
        movq    %cr4, %rax
        orl     $CR4_MCE, %eax
        movq    %rax, %cr4
        movl    $MSR_MCG_CAP, %ecx
        rdmsr
        movzbl  %al, %edi               /* banks */
        testl   $MCG_CTL_P, %eax
        jz      1f
        movl    $MSR_MCG_CTL, %ecx
        movl    $-1, %eax
        movl    $-1, %edx
        wrmsr
1:      xorl    %ebx, %ebx
2:      cmpl    %edi, %ebx
        jae     3f
        leal    MSR_MC0_CTL(,%rbx,4), %ecx
        movl    $-1, %eax
        movl    $-1, %edx
        wrmsr
        incl    %ecx                    /* MCi_STATUS */
        xorl    %eax, %eax
        xorl    %edx, %edx
        wrmsr
        incl    %ebx
        jmp     2b
3:      call    mce_record
        movl    $-1, MCE_BANK(%rsi)
        ret

/* #MC: record, clear, and resume (see guest-abi.h). */
mce_handler:
        pushq   %rax
        pushq   %rbx
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        call    mce_record
        incl    MCE_COUNT(%rsi)
        movq    48(%rsp), %rax          /* the frame's RIP */
        movq    %rax, MCE_RIP(%rsi)
        movl    $MSR_MCG_STATUS, %ecx
        rdmsr
        movl    %eax, MCE_MCG_STATUS(%rsi)
        movl    %edx, MCE_MCG_STATUS + 4(%rsi)
        movl    $MSR_MCG_CAP, %ecx
        rdmsr
        movzbl  %al, %edi
        xorl    %ebx, %ebx
1:      cmpl    %edi, %ebx
        jae     3f
        leal    (MSR_MC0_CTL + 1)(,%rbx,4), %ecx
        rdmsr
        btl     $31, %edx               /* MCi_STATUS.VAL */
        jc      2f
        incl    %ebx
        jmp     1b
2:      movl    %ebx, MCE_BANK(%rsi)
        movl    %eax, MCE_STATUS(%rsi)
        movl    %edx, MCE_STATUS + 4(%rsi)
        incl    %ecx
        rdmsr
        movl    %eax, MCE_ADDR(%rsi)
        movl    %edx, MCE_ADDR + 4(%rsi)
        incl    %ecx
        rdmsr
        movl    %eax, MCE_MISC(%rsi)
        movl    %edx, MCE_MISC + 4(%rsi)
        subl    $2, %ecx
        xorl    %eax, %eax
        xorl    %edx, %edx
        wrmsr                           /* MCi_STATUS = 0 */
3:      testl   $MCG_STATUS_EIPV, MCE_MCG_STATUS(%rsi)
        jz      4f
        movl    MB(MB_OP_PC_END), %eax
        movq    %rax, 48(%rsp)          /* resume after the access */
4:      movl    $MSR_MCG_STATUS, %ecx
        xorl    %eax, %eax
        xorl    %edx, %edx
        wrmsr                           /* MCIP clear: the next one may come */
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        iretq

/* To CPL 3 with IOPL 3 (port I/O stays allowed), by iretq. */
to_user64:
        pushq   $GUEST_SEL_USER_DATA
        pushq   $GUEST_STACK_TOP
        pushfq
        orq     $0x3000, (%rsp)
        pushq   $GUEST_SEL_USER_CODE64
        movl    $entry_user64, %eax     /* zero-extends: ROM is below 4G */
        pushq   %rax
        iretq

entry_user64:
        movl    $GUEST_MODE_USER64, MB(MB_STAGE)
        movl    $msg_user64, %esi
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, $GUEST_DEBUGCON_PORT
        jmp     1b
2:      call    op64
        movl    $GUEST_DONE, MB(MB_DONE)
        movl    $GUEST_EXIT_OK, %eax
        outl    %eax, $GUEST_EXIT_PORT
3:      pause                           /* hlt would fault at CPL 3 */
        jmp     3b

/* The requested touch, in 64-bit mode (CPL 0 or 3). */
op64:
        movl    MB(MB_REQ_ADDR), %ebx   /* zero-extends into %rbx */
        movl    MB(MB_REQ_OP), %ecx
        testl   %ecx, %ecx
        jz      9f
        movl    $GUEST_OP_MARK, MB(MB_OP_STARTED)
        cmpl    $GUEST_OP_READ, %ecx
        jne     4f
        movl    $read64, MB(MB_OP_PC)
        movl    $read64_end, MB(MB_OP_PC_END)
read64: movzbl  (%rbx), %eax
read64_end:
        movl    %eax, MB(MB_OP_VALUE)
        jmp     8f
4:      cmpl    $GUEST_OP_WRITE, %ecx
        jne     5f
        movl    $write64, MB(MB_OP_PC)
        movl    $write64_end, MB(MB_OP_PC_END)
write64:
        movb    $GUEST_WRITE_BYTE, (%rbx)
write64_end:
        jmp     8f
5:      cmpl    $GUEST_OP_FETCH, %ecx
        jne     6f
        call    *%rbx
        jmp     8f
6:      cmpl    $GUEST_OP_INSB, %ecx
        jne     7f
        movq    %rbx, %rdi
        movl    MB(MB_REQ_COUNT), %ecx
        movw    $GUEST_DEBUGCON_PORT, %dx
        rep insb
        jmp     8f
7:      cmpl    $GUEST_OP_PIO_LOOP, %ecx
        jne     10f
        movl    MB(MB_REQ_COUNT), %ecx
11:     outb    %al, $GUEST_PIO_LOOP_PORT
        decl    %ecx
        jnz     11b
        jmp     8f
10:     cmpl    $GUEST_OP_MMIO_LOOP, %ecx
        jne     13f
        movl    MB(MB_REQ_COUNT), %ecx
12:     movl    (%rbx), %eax
        decl    %ecx
        jnz     12b
        jmp     8f
13:     cmpl    $GUEST_OP_SCRIPT, %ecx
        jne     14f
        call    script64
        jmp     8f
14:     cmpl    $GUEST_OP_FILL, %ecx
        jne     15f
        movq    %rbx, %rdi
        movl    MB(MB_REQ_COUNT), %ecx
        shrl    $3, %ecx
        movq    $GUEST_FILL_PATTERN, %rax
        rep stosq
        jmp     8f
15:     cmpl    $GUEST_OP_NPT, %ecx
        jne     16f
        call    npt_main                /* npt.c: the L1 hypervisor */
        jmp     8f
16:     cmpl    $GUEST_OP_COPY, %ecx
        jne     8f
        movq    %rbx, %rsi
        movl    $GUEST_COPY_DST, %edi
        movl    $GUEST_COPY_QWORDS, %ecx
        cld
        movl    $copy64, MB(MB_OP_PC)
        movl    $copy64_end, MB(MB_OP_PC_END)
copy64: rep movsq
copy64_end:
8:      movl    $GUEST_OP_MARK, MB(MB_OP_DONE)
9:      ret

/* Run the steps at MB_SCRIPT (guest-abi.h); %rsi walks the steps. */
script64:
        movl    $MB(MB_SCRIPT), %esi
1:      movl    STEP_OP(%rsi), %ecx
        testl   %ecx, %ecx
        jz      9f
        movl    STEP_ADDR(%rsi), %ebx   /* zero-extends into %rbx */
        cmpl    $STEP_WRITE32, %ecx
        jne     2f
        movl    STEP_ARG(%rsi), %eax
        movl    $swrite, MB(MB_OP_PC)
        movl    $swrite_end, MB(MB_OP_PC_END)
swrite: movl    %eax, (%rbx)
swrite_end:
        jmp     8f
2:      cmpl    $STEP_READ32, %ecx
        jne     7f
        movl    $sread, MB(MB_OP_PC)
        movl    $sread_end, MB(MB_OP_PC_END)
sread:  movl    (%rbx), %eax
sread_end:
        movl    %eax, STEP_RESULT(%rsi)
        jmp     8f
7:      cmpl    $STEP_WAIT32, %ecx
        jne     3f
        movl    STEP_ARG(%rsi), %eax
10:     pause
        cmpl    (%rbx), %eax
        jne     10b
        jmp     8f
3:      movl    $GUEST_MAP_GPA_ENCRYPTED, %edx
        cmpl    $STEP_MAP_PRIVATE, %ecx
        je      4f
        xorl    %edx, %edx
        cmpl    $STEP_MAP_SHARED, %ecx
        jne     8f
4:      movl    %edx, %edi              /* the attributes */
        movl    $0x40000001, %eax
        cpuid
        movl    STEP_ADDR(%rsi), %ebx
        movl    STEP_ARG(%rsi), %ecx
        movl    $GUEST_HC_MAP_GPA_RANGE, %eax
        btl     $GUEST_CONTRACT_HC_BIT, %edx
        movl    %edi, %edx
        jc      5f
        vmcall
        jmp     6f
5:      outl    %eax, $GUEST_CONTRACT_HC_PORT
6:      movl    %eax, STEP_RESULT(%rsi)
8:      incl    MB(MB_STEPS_DONE)
        addl    $STEP_SIZE, %esi
        jmp     1b
9:      ret


/* ------------------------------------------------------------------ */
        .section .rodata
        .balign 8
/*
 * The GDT lives in ROM, so every descriptor has its Accessed bit set: the
 * CPU would otherwise write it when loading a selector, and a write to
 * ROM is an MMIO exit that some KVM hosts retry forever.
 */
gdt:
        .quad   0
        .quad   0x00cf9b000000ffff      /* GUEST_SEL_CODE32 */
        .quad   0x00cf93000000ffff      /* GUEST_SEL_DATA */
        .quad   0x00af9b000000ffff      /* GUEST_SEL_CODE64 */
        .quad   0x00affb000000ffff      /* GUEST_SEL_USER_CODE64 */
        .quad   0x00cff3000000ffff      /* GUEST_SEL_USER_DATA */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt

msg_real:
        .asciz  "guest: real mode\n"
msg_prot32:
        .asciz  "guest: 32-bit protected mode\n"
msg_long64:
        .asciz  "guest: 64-bit long mode\n"
msg_user64:
        .asciz  "guest: 64-bit user mode (CPL 3)\n"

/* ------------------------------------------------------------------ */
/*
 * An AP starts here in real mode at CS:IP 0xf100:0000 (SIPI vector
 * AP_VECTOR); DS reaches the image through its alias at 0xf0000.
 */
        .section .text.ap16, "ax"
        .code16
        .globl ap_entry16
ap_entry16:
        cli
        cld
        movw    $ISA_BIOS_SEG, %ax
        movw    %ax, %ds
        lgdtl   ROFF(gdt_desc)
        movl    %cr0, %eax
        orl     $CR0_PE, %eax
        movl    %eax, %cr0
        ljmpl   $GUEST_SEL_CODE32, $ap_entry32

/* ------------------------------------------------------------------ */
/* The reset vector: CS base 0xffff0000, IP 0xfff0. */
        .section .reset, "ax"
        .code16
        jmp     entry16
        .balign 16, 0xf4

        .section .note.GNU-stack, "", @progbits
