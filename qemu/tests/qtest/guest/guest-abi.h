/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The contract between the freestanding test guest (entry.S) and the
 * qtests that drive it: where the guest's mailbox lives in RAM, what its
 * fields mean, and which I/O ports it talks to.  Included from C and from
 * assembler, so it holds only preprocessor constants.
 */

#ifndef TESTS_QTEST_GUEST_ABI_H
#define TESTS_QTEST_GUEST_ABI_H

/* The image is a flat -bios ROM of this size, ending at 4 GiB. */
#define GUEST_IMAGE_SIZE        0x10000
#define GUEST_IMAGE_BASE        0xffff0000

/* I/O ports. */
#define GUEST_DEBUGCON_PORT     0xe9    /* -device isa-debugcon,iobase=0xe9 */
#define GUEST_EXIT_PORT         0xf4    /* -device isa-debug-exit */

/*
 * The mailbox, in guest RAM at GUEST_MAILBOX_GPA.  The qtest may fill in
 * the request fields while the VM is paused (-S) before it starts; the
 * guest fills in the rest.  All fields are little-endian.
 */
#define GUEST_MAILBOX_GPA       0x5000

#define MB_MAGIC                0x00    /* u32: GUEST_MAGIC once started */
#define MB_STAGE                0x04    /* u32: deepest GUEST_MODE_* reached */
#define MB_REQ_MODE             0x08    /* u32: mode to stop in; 0 = long */
#define MB_DONE                 0x0c    /* u32: GUEST_DONE when finished */
#define MB_REQ_OP               0x10    /* u32: GUEST_OP_*, done in that mode */
#define MB_REQ_ADDR             0x14    /* u32: physical address to touch */
#define MB_REQ_COUNT            0x18    /* u32: bytes for GUEST_OP_INSB */
#define MB_OP_STARTED           0x1c    /* u32: GUEST_OP_MARK before the op */
#define MB_OP_DONE              0x20    /* u32: GUEST_OP_MARK after the op */
#define MB_OP_VALUE             0x24    /* u32: byte read by GUEST_OP_READ */
#define MB_FAR_PTR              0x28    /* u32: scratch for real-mode lcall */
#define MB_STEPS_DONE           0x2c    /* u32: GUEST_OP_SCRIPT steps done */
#define MB_OP_PC                0x30    /* u32: address of the insn that */
                                        /* makes a READ/WRITE access */
#define MB_OP_PC_END            0x34    /* u32: address of the next insn */
#define MB_REQ_APS              0x38    /* u32: APs to start (see below) */
#define MB_APS_UP               0x3c    /* u32: APs that reached long mode */
#define MB_AP_NEXT              0x40    /* u32: the next AP's index */
#define MB_AP_GO                0x44    /* u32: set once all APs are up */
#define MB_REQ_MCE              0x48    /* u32: see below */
#define MB_SIZE                 0x50

/*
 * With MB_REQ_MCE nonzero, every vCPU in 64-bit kernel mode (the
 * request mode is GUEST_MODE_LONG64) installs a machine-check handler
 * (an IDT at GUEST_IDT_BASE with vector 18 only), enables machine
 * checks (CR4.MCE, MCG_CTL and every bank's MCi_CTL all ones, the
 * banks' MCi_STATUS cleared) and does MB_REQ_OP (READ or WRITE)
 * MB_REQ_MCE times.  The handler records, in the vCPU's MCE_RECORD
 * (indexed by its initial APIC ID), MCG_STATUS and the first bank whose
 * MCi_STATUS is valid, with MCi_ADDR and MCi_MISC, clears them and,
 * when MCG_STATUS.EIPV says the error is the interrupted instruction's,
 * resumes after it (at MB_OP_PC_END); else where it was interrupted.
 */
#define GUEST_IDT_BASE          0x16000
#define MB_MCE_RECORDS          0x600
#define MCE_RECORD_SIZE         0x40
#define MCE_RECORD(apic_id)     (MB_MCE_RECORDS + (apic_id) * MCE_RECORD_SIZE)
#define MCE_COUNT               0x00    /* u32: machine checks taken */
#define MCE_BANK                0x04    /* u32: bank recorded; ~0: none valid */
#define MCE_MCG_STATUS          0x08    /* u64 */
#define MCE_STATUS              0x10    /* u64: MCi_STATUS */
#define MCE_ADDR                0x18    /* u64: MCi_ADDR */
#define MCE_MISC                0x20    /* u64: MCi_MISC */
#define MCE_RIP                 0x28    /* u64: where it was taken */
#define MCE_TOUCHES             0x30    /* u32: MB_REQ_OP done (or cut) */

/*
 * With MB_REQ_APS nonzero (and -smp greater than 1), the BSP starts the
 * APs once it is in long mode (INIT, SIPI to all but itself), waits for
 * MB_REQ_APS of them to reach long mode on its page tables, and then
 * every vCPU does MB_REQ_OP (any op but GUEST_OP_SCRIPT) on MB_REQ_ADDR,
 * all at once (the APs wait for MB_AP_GO); the APs then halt.  AP n (in
 * the order they start) has its stack below GUEST_AP_STACK_BASE +
 * (n + 1) * GUEST_AP_STACK_SIZE; more than GUEST_AP_MAX APs halt at
 * once.
 */
#define GUEST_AP_STACK_BASE     0x8000
#define GUEST_AP_STACK_SIZE     0x800
#define GUEST_AP_MAX            15

/*
 * GUEST_OP_SCRIPT (64-bit kernel mode only) runs the steps at MB_SCRIPT,
 * in the mailbox page, until one has op STEP_END, counting each finished
 * step in MB_STEPS_DONE.  A step is four u32: op, addr, arg, result.
 */
#define MB_SCRIPT               0x100
#define MB_SCRIPT_STEPS         32
#define STEP_SIZE               16
#define STEP_OP                 0x0
#define STEP_ADDR               0x4
#define STEP_ARG                0x8
#define STEP_RESULT             0xc

#define STEP_END                0
#define STEP_WRITE32            1   /* movl arg, (addr) */
#define STEP_READ32             2   /* result = (addr) */
#define STEP_MAP_PRIVATE        3   /* MAP_GPA_RANGE(addr, arg pages, priv.) */
#define STEP_MAP_SHARED         4   /* ... shared; result = the hypercall's */
#define STEP_WAIT32             5   /* spin until (addr) == arg */

/*
 * KVM's hypercall ABI (include/uapi/linux/kvm_para.h): nr in RAX, then
 * RBX, RCX, RDX; the result comes back in RAX.  Under KVM the guest first
 * asks for its mailbox page to be shared, so that the qtest sees it in a
 * VM whose memory starts private; elsewhere KVM answers -KVM_ENOSYS.
 */
#define GUEST_HC_MAP_GPA_RANGE  12
/* CPUID 0x40000001 EAX: KVM_FEATURE_HC_MAP_GPA_RANGE, the hypercall exists */
#define GUEST_KVM_FEATURE_MAP_GPA 16
/*
 * A KVM without KVM_X86_SW_PROTECTED_VM need not exit to userspace on
 * VMCALL (PVM, a paravirtual KVM, never does), so the test-only
 * kernel-contract layer (tests/qtest/kvm-contract) sets this bit of CPUID
 * 0x40000001 EDX, and the guest traps its hypercalls with an OUTL to
 * GUEST_CONTRACT_HC_PORT instead, which the layer turns into the
 * KVM_EXIT_HYPERCALL a real kernel would produce.  No real kernel sets
 * the bit.
 */
#define GUEST_CONTRACT_HC_BIT   30
#define GUEST_CONTRACT_HC_PORT  0xe4    /* OUTL imm8: RDX keeps its value */
#define GUEST_MAP_GPA_ENCRYPTED 0x10    /* KVM_MAP_GPA_RANGE_ENCRYPTED */
#define GUEST_KVM_SIGNATURE_EBX 0x4b4d564b  /* "KVMK" from CPUID 0x40000000 */

/*
 * GUEST_OP_NPT: the request and the results, in the mailbox page.  See
 * npt.c for what each scenario does; the qtest judges the values.
 */
#define MB_NPT_SCENARIO         0x400   /* u32: NPT_SC_* */
#define MB_NPT_STATUS           0x404   /* u32: NPT_PASS, ... when done */
#define MB_NPT_GPA              0x408   /* u32: L2 GPA the change is for */
#define MB_NPT_LEVEL            0x40c   /* u32: NPT level, 1 = 4 KiB leaf */
#define MB_NPT_ACCESS           0x410   /* u32: NPT_ACCESS_* by L2 */
#define MB_NPT_FLAGS            0x414   /* u32: NPT_F_* */
#define MB_NPT_ROUNDS           0x418   /* u32 */
#define MB_NPT_COUNT            0x41c   /* u32: pages */
#define MB_NPT_ROUNDS_DONE      0x420   /* u32 */
#define MB_NPT_NR_EXITS         0x424   /* u32: exits recorded */
#define MB_NPT_L2_DONE          0x428   /* u32: L2 runs that completed */
#define MB_NPT_STOP             0x42c   /* u32: set by the qtest */
#define MB_NPT_L2_ADDR          0x430   /* u32: what L2 touches; 0: GPA */
#define MB_NPT_SET              0x438   /* u64: bits set in the entry */
#define MB_NPT_CLEAR            0x440   /* u64: bits cleared in it */
#define MB_NPT_ENTRY            0x448   /* u64: the changed entry */
#define MB_NPT_RESULT           0x450   /* u64: what L2 read */
#define MB_NPT_DETAIL           0x458   /* u64: what failed, if any */
#define MB_NPT_TARGET           0x460   /* u64: L1 address for NPT_SC_REMAP */
#define MB_NPT_AD               0x480   /* 8 x u64: NPT_SC_AD entries */
#define MB_NPT_EXITS            0x500   /* NPT_MAX_EXITS x NPT_EXIT_SIZE */
#define NPT_MAX_EXITS           8
#define NPT_EXIT_SIZE           32
#define NPT_EXIT_CODE           0       /* u64 each */
#define NPT_EXIT_INFO1          8
#define NPT_EXIT_INFO2          16
#define NPT_EXIT_RIP            24

#define NPT_SC_ROUNDS           1       /* shared tables, many rounds */
#define NPT_SC_FAULT            2       /* one NPT entry changed */
#define NPT_SC_AD               3       /* accessed/dirty bits */
#define NPT_SC_REMAP            4       /* an L2 page elsewhere in L1 */
#define NPT_SC_ROM_TABLES       5       /* L1 on page tables in its ROM */

#define NPT_ACCESS_READ         1
#define NPT_ACCESS_WRITE        2
#define NPT_ACCESS_FETCH        3

#define NPT_F_NXE               1       /* L1 runs with EFER.NXE */
#define NPT_F_SMEP              2       /* L1 runs with CR4.SMEP */

#define NPT_PASS                0x53534150  /* "PASS" */
#define NPT_FAIL                0x4c494146  /* "FAIL" */
#define NPT_NO_SVM              0x4d56534e  /* "NSVM": no CPUID SVM */
#define NPT_NO_NPT              0x54504e4e  /* "NNPT": no CPUID NPT */
#define NPT_NO_SMEP             0x504d534e  /* "NSMP": no CPUID SMEP */
#define NPT_NO_1G               0x4247314e  /* "N1GB": no 1 GiB pages */

/*
 * Page-table entry bits (long mode; the nested tables have the same
 * format), for MB_NPT_SET and MB_NPT_CLEAR.
 */
#define PTE_P                   0x1
#define PTE_W                   0x2
#define PTE_U                   0x4
#define PTE_A                   0x20
#define PTE_D                   0x40
#define PTE_PS                  0x80

/* L2's data and the L1 hypervisor's tables: 0x20000-0x47fff. */
#define GUEST_NPT_RAM_BASE      0x20000
#define GUEST_NPT_L2_GPA        0x40000000  /* L2's page tables, as L2 */
#define GUEST_NPT_L2_PT         0x2800000   /* ... sees them, and in L1 */

/*
 * Operations on MB_REQ_ADDR, done once the requested mode is reached.
 * All page tables identity-map, so the address is also the GPA.  In real
 * mode it must be below 1 MiB.
 */
#define GUEST_OP_NONE           0
#define GUEST_OP_READ           1   /* movb (addr), %al */
#define GUEST_OP_WRITE          2   /* movb $GUEST_WRITE_BYTE, (addr) */
#define GUEST_OP_FETCH          3   /* call addr (put a ret there) */
#define GUEST_OP_INSB           4   /* rep insb from GUEST_DEBUGCON_PORT */
#define GUEST_OP_MAX            4
/* Loops for benchmarks, 64-bit mode only: MB_REQ_COUNT iterations. */
#define GUEST_OP_PIO_LOOP       5   /* outb to GUEST_PIO_LOOP_PORT */
#define GUEST_OP_MMIO_LOOP      6   /* readl from MB_REQ_ADDR (a device) */
/* Private-memory steps, 64-bit kernel mode only: see MB_SCRIPT. */
#define GUEST_OP_SCRIPT         7
/* Benchmark, 64-bit mode only: rep stosq over MB_REQ_COUNT bytes at addr. */
#define GUEST_OP_FILL           8

/* The guest as an L1 hypervisor (npt.c), 64-bit kernel mode only. */
#define GUEST_OP_NPT            9

/*
 * 64-bit mode only: rep movsq of GUEST_COPY_QWORDS from addr to
 * GUEST_COPY_DST, a memory-to-memory copy (MB_OP_PC, MB_OP_PC_END).
 */
#define GUEST_OP_COPY           10
#define GUEST_COPY_DST          0x17000
#define GUEST_COPY_QWORDS       2

#define GUEST_PIO_LOOP_PORT     0x80

#define GUEST_OP_MARK           0x4b4f4f54  /* "TOOK" */
#define GUEST_WRITE_BYTE        0x5a
#define GUEST_FILL_PATTERN      0x46494c4c  /* "FILL" */

#define GUEST_MAGIC             0x424c4751  /* "QGLB" */
#define GUEST_DONE              0x454e4f44  /* "DONE" */

#define GUEST_MODE_REAL         1   /* 16-bit real mode */
#define GUEST_MODE_PROT32       2   /* 32-bit flat protected mode */
#define GUEST_MODE_LONG64       3   /* 64-bit long mode, 4 GiB identity map */
#define GUEST_MODE_USER64       4   /* the same at CPL 3, IOPL 3; ends */
                                    /* spinning (hlt would fault) */

/*
 * What the guest writes to GUEST_EXIT_PORT when done: isa-debug-exit
 * turns it into the exit status (GUEST_EXIT_OK << 1) | 1 = 33.
 */
#define GUEST_EXIT_OK           0x10

/* RAM the guest uses for itself: stack top and page tables (long mode). */
#define GUEST_STACK_TOP         0x7000
#define GUEST_PT_BASE           0x10000 /* PML4, PDPT, 4 PDs: 0x10000-0x15fff */

/* Segment selectors of the guest's GDT. */
#define GUEST_SEL_CODE32        0x08
#define GUEST_SEL_DATA          0x10
#define GUEST_SEL_CODE64        0x18
#define GUEST_SEL_USER_CODE64   0x23    /* DPL 3, RPL 3 */
#define GUEST_SEL_USER_DATA     0x2b    /* DPL 3, RPL 3 */

#endif /* TESTS_QTEST_GUEST_ABI_H */
