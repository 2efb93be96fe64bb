/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * GUEST_OP_NPT: the test guest as an L1 hypervisor.  In long mode it
 * turns on EFER.SVME, builds a VMCB with nested paging and runs a small
 * L2 (l2_main(), also in this ROM) through one scenario (MB_NPT_*,
 * guest-abi.h), recording what L2 did and the #VMEXITs it took.  The
 * qtest decides what the values must be.
 *
 * Freestanding C: no library, no writable data (the image is ROM);
 * everything it writes lives in guest RAM at the addresses below.
 * Facts used (AMD APM vol. 2, sections 15.5, 15.20 and 15.25): the
 * VMCB layout, the intercept bits, VMRUN keeping only RAX, RSP and RIP
 * of the host and clearing GIF on #VMEXIT, NPF EXITINFO1/EXITINFO2.
 */

#include <stdint.h>
#include "guest-abi.h"

#define PTE_TABLE       (PTE_P | PTE_W | PTE_U)
#define PTE_ADDR        0x000ffffffffff000ull

#define MSR_EFER        0xc0000080
#define MSR_VM_HSAVE_PA 0xc0010117
#define EFER_NXE        (1u << 11)
#define EFER_SVME       (1u << 12)
#define CR4_SMEP        (1u << 20)

/* VMCB control area */
#define VMCB_INTERCEPT3 0x00c           /* u32: bit 31 SHUTDOWN */
#define VMCB_INTERCEPT4 0x010           /* u32: bit 0 VMRUN, 1 VMMCALL */
#define VMCB_IOPM       0x040
#define VMCB_MSRPM      0x048
#define VMCB_ASID       0x058
#define VMCB_TLB_CTL    0x05c
#define VMCB_EXITCODE   0x070
#define VMCB_EXITINFO1  0x078
#define VMCB_EXITINFO2  0x080
#define VMCB_NP_ENABLE  0x090
#define VMCB_NCR3       0x0b0
#define VMCB_CLEAN      0x0c0
/* VMCB save area */
#define VMCB_ES         0x400
#define VMCB_CS         0x410
#define VMCB_SS         0x420
#define VMCB_DS         0x430
#define VMCB_GDTR       0x460
#define VMCB_IDTR       0x480
#define VMCB_CPL        0x4cb
#define VMCB_EFER       0x4d0
#define VMCB_CR4        0x548
#define VMCB_CR3        0x550
#define VMCB_CR0        0x558
#define VMCB_DR7        0x560
#define VMCB_DR6        0x568
#define VMCB_RFLAGS     0x570
#define VMCB_RIP        0x578
#define VMCB_RSP        0x5d8
#define VMCB_RAX        0x5f8
#define VMCB_GPAT       0x668

#define EXIT_VMMCALL    0x81
#define EXIT_SHUTDOWN   0x7f
#define EXIT_NPF        0x400

/* Guest RAM the L1 uses (below GUEST_AP_STACK_BASE is the mailbox). */
#define VMCB_PA         0x40000
#define HSAVE_PA        0x41000
#define IOPM_PA         0x42000         /* 12 KiB */
#define MSRPM_PA        0x45000         /* 8 KiB */
#define NPML4_PA        0x20000
#define NPDPT_PA        0x21000
#define NPD_PA          0x22000         /* GPA 0-1 GiB */
#define NPT0_PA         0x23000         /* GPA 0-2 MiB, 4 KiB pages */
#define NPT1_PA         0x24000         /* GPA 2-4 MiB, 4 KiB pages */
#define NPD_HI_PA       0x25000         /* GPA 1-2 GiB */
#define NPT_HI_PA       0x26000         /* GPA 1 GiB + 0-2 MiB */
#define L2_CMD_PA       0x31000         /* L2's command block */
#define L2_REGS_PA      0x32000         /* L2's registers between runs */
#define L2_STACK_TOP    0x30000
#define L2_PT_GPA       GUEST_NPT_L2_GPA /* L2's own page tables... */
#define L2_PT_PA        GUEST_NPT_L2_PT /* ...backed here */

/* L2's command block: what l2_main() does on each run. */
#define L2_OP           0x00            /* u32: L2_* */
#define L2_ADDR         0x08            /* u64 */
#define L2_COUNT        0x10            /* u64 */
#define L2_VALUE        0x18            /* u64 */
#define L2_RESULT       0x20            /* u64 */
#define L2_DONE         0x28            /* u32: runs finished */

#define L2_NONE         0
#define L2_READ         NPT_ACCESS_READ
#define L2_WRITE        NPT_ACCESS_WRITE
#define L2_FETCH        NPT_ACCESS_FETCH
#define L2_PATTERN      4               /* write COUNT pages from ADDR */

/*
 * Plain pointers into guest RAM: the qtest reads what L1 leaves there
 * once L1 is done, and every VMRUN (an asm statement that clobbers
 * memory) makes the compiler write back and reload around it.
 */
static inline uint32_t *mb32(uint32_t off)
{
    return (uint32_t *)(uintptr_t)(GUEST_MAILBOX_GPA + off);
}

static inline uint64_t *mb64(uint32_t off)
{
    return (uint64_t *)(uintptr_t)(GUEST_MAILBOX_GPA + off);
}

static inline uint64_t *ram64(uint64_t pa)
{
    return (uint64_t *)(uintptr_t)pa;
}

static inline uint32_t *ram32(uint64_t pa)
{
    return (uint32_t *)(uintptr_t)pa;
}

static inline uint16_t *ram16(uint64_t pa)
{
    return (uint16_t *)(uintptr_t)pa;
}

static inline uint8_t *ram8(uint64_t pa)
{
    return (uint8_t *)(uintptr_t)pa;
}

static void zero(uint64_t pa, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 8) {
        *ram64(pa + i) = 0;
    }
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return lo | ((uint64_t)hi << 32);
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v),
                 "d"((uint32_t)(v >> 32)));
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b,
                         uint32_t *c, uint32_t *d)
{
    asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                 : "a"(leaf), "c"(0));
}

static inline uint64_t read_cr(int n)
{
    uint64_t v = 0;

    switch (n) {
    case 0:
        asm volatile("mov %%cr0, %0" : "=r"(v));
        break;
    case 3:
        asm volatile("mov %%cr3, %0" : "=r"(v));
        break;
    case 4:
        asm volatile("mov %%cr4, %0" : "=r"(v));
        break;
    }
    return v;
}

static inline void write_cr(int n, uint64_t v)
{
    switch (n) {
    case 3:
        asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
        break;
    case 4:
        asm volatile("mov %0, %%cr4" : : "r"(v) : "memory");
        break;
    }
}

/*
 * CR4.SMEP for L1, and so for the nested walk (the host state at VMRUN).
 * Every page of the guest's own tables is a user page (entry.S), which
 * SMEP would forbid L1 to execute: the PML4E takes U away meanwhile.
 */
static void l1_smep(int on)
{
    uint64_t *pml4e = ram64(GUEST_PT_BASE);

    if (on) {
        *pml4e &= ~(uint64_t)PTE_U;
        write_cr(3, read_cr(3));
        write_cr(4, read_cr(4) | CR4_SMEP);
    } else {
        write_cr(4, read_cr(4) & ~(uint64_t)CR4_SMEP);
        *pml4e |= PTE_U;
        write_cr(3, read_cr(3));
    }
}

/* --- L2 --- */

static void __attribute__((noreturn, used)) l2_main(void)
{
    uint64_t addr = *ram64(L2_CMD_PA + L2_ADDR);
    uint64_t count = *ram64(L2_CMD_PA + L2_COUNT);
    uint64_t value = *ram64(L2_CMD_PA + L2_VALUE);

    switch (*ram32(L2_CMD_PA + L2_OP)) {
    case L2_READ:
        *ram64(L2_CMD_PA + L2_RESULT) = *ram64(addr);
        break;
    case L2_WRITE:
        *ram64(addr) = value;
        break;
    case L2_FETCH:
        ((void (*)(void))(uintptr_t)addr)();
        break;
    case L2_PATTERN:
        for (uint64_t p = 0; p < count; p++) {
            for (uint64_t o = 0; o < 4096; o += 512) {
                *ram64(addr + p * 4096 + o) = value ^ (p << 16) ^ o;
            }
        }
        break;
    }
    *ram32(L2_CMD_PA + L2_DONE) += 1;
    for (;;) {
        asm volatile("vmmcall" : : : "memory");
    }
}

/* --- L1 --- */

static void set_seg(uint32_t off, uint16_t sel, uint16_t attrib)
{
    *ram16(VMCB_PA + off) = sel;
    *ram16(VMCB_PA + off + 2) = attrib;
    *ram32(VMCB_PA + off + 4) = 0xffffffff;
    *ram64(VMCB_PA + off + 8) = 0;
}

/*
 * Run L2 until its next #VMEXIT; the exit code.  VMRUN switches only
 * RAX, RSP and RIP (and the VMCB's state): L2's other registers are
 * kept at L2_REGS_PA across exits, as a hypervisor does, so that L2 can
 * resume a faulting instruction.  L1's callee-saved ones are pushed.
 */
static uint64_t run_l2(void)
{
    uint64_t vmcb = VMCB_PA;

    asm volatile("push %%rbp\n\t"
                 "push %%rbx\n\t"
                 "push %%r12\n\t"
                 "push %%r13\n\t"
                 "push %%r14\n\t"
                 "push %%r15\n\t"
                 "mov %c[r] + 0x08, %%rbx\n\t"
                 "mov %c[r] + 0x10, %%rcx\n\t"
                 "mov %c[r] + 0x18, %%rdx\n\t"
                 "mov %c[r] + 0x20, %%rsi\n\t"
                 "mov %c[r] + 0x28, %%rdi\n\t"
                 "mov %c[r] + 0x30, %%rbp\n\t"
                 "mov %c[r] + 0x38, %%r8\n\t"
                 "mov %c[r] + 0x40, %%r9\n\t"
                 "mov %c[r] + 0x48, %%r10\n\t"
                 "mov %c[r] + 0x50, %%r11\n\t"
                 "mov %c[r] + 0x58, %%r12\n\t"
                 "mov %c[r] + 0x60, %%r13\n\t"
                 "mov %c[r] + 0x68, %%r14\n\t"
                 "mov %c[r] + 0x70, %%r15\n\t"
                 "vmrun %%rax\n\t"
                 "mov %%rbx, %c[r] + 0x08\n\t"
                 "mov %%rcx, %c[r] + 0x10\n\t"
                 "mov %%rdx, %c[r] + 0x18\n\t"
                 "mov %%rsi, %c[r] + 0x20\n\t"
                 "mov %%rdi, %c[r] + 0x28\n\t"
                 "mov %%rbp, %c[r] + 0x30\n\t"
                 "mov %%r8, %c[r] + 0x38\n\t"
                 "mov %%r9, %c[r] + 0x40\n\t"
                 "mov %%r10, %c[r] + 0x48\n\t"
                 "mov %%r11, %c[r] + 0x50\n\t"
                 "mov %%r12, %c[r] + 0x58\n\t"
                 "mov %%r13, %c[r] + 0x60\n\t"
                 "mov %%r14, %c[r] + 0x68\n\t"
                 "mov %%r15, %c[r] + 0x70\n\t"
                 "stgi\n\t"
                 "pop %%r15\n\t"
                 "pop %%r14\n\t"
                 "pop %%r13\n\t"
                 "pop %%r12\n\t"
                 "pop %%rbx\n\t"
                 "pop %%rbp"
                 : "+a"(vmcb)
                 : [r] "i"(L2_REGS_PA)
                 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
                   "memory", "cc");
    return *ram64(VMCB_PA + VMCB_EXITCODE);
}

/* Start L2 afresh at l2_main() with command @op. */
static void l2_command(uint32_t op, uint64_t addr, uint64_t count,
                       uint64_t value)
{
    *ram32(L2_CMD_PA + L2_OP) = op;
    *ram64(L2_CMD_PA + L2_ADDR) = addr;
    *ram64(L2_CMD_PA + L2_COUNT) = count;
    *ram64(L2_CMD_PA + L2_VALUE) = value;
    *ram64(L2_CMD_PA + L2_RESULT) = 0;
    zero(L2_REGS_PA, 0x80);
    *ram64(VMCB_PA + VMCB_RIP) = (uint64_t)(uintptr_t)l2_main;
    *ram64(VMCB_PA + VMCB_RSP) = L2_STACK_TOP - 8;
    *ram64(VMCB_PA + VMCB_RFLAGS) = 2;
}

/*
 * The nested tables.  GPA 0-1 GiB: private tables, 4 KiB pages for the
 * first 4 MiB (scenarios change single entries there), 2 MiB pages
 * above; GPA 1 GiB + 0-2 MiB: L2's own page tables, backed at L2_PT_PA;
 * GPA 2-4 GiB (the ROM with L2's code): L1's own page directories,
 * shared.  With @shared, GPA 0-1 GiB is L1's own page directory too.
 */
static void build_npt(int shared)
{
    zero(NPML4_PA, 0x7000);
    *ram64(NPML4_PA) = NPDPT_PA | PTE_TABLE;
    *ram64(NPDPT_PA) = (shared ? GUEST_PT_BASE + 0x2000 : NPD_PA) | PTE_TABLE;
    *ram64(NPDPT_PA + 8) = NPD_HI_PA | PTE_TABLE;
    *ram64(NPDPT_PA + 16) = (GUEST_PT_BASE + 0x4000) | PTE_TABLE;
    *ram64(NPDPT_PA + 24) = (GUEST_PT_BASE + 0x5000) | PTE_TABLE;
    *ram64(NPD_PA) = NPT0_PA | PTE_TABLE;
    *ram64(NPD_PA + 8) = NPT1_PA | PTE_TABLE;
    for (uint64_t i = 2; i < 512; i++) {
        *ram64(NPD_PA + i * 8) = (i << 21) | PTE_TABLE | PTE_PS;
    }
    for (uint64_t i = 0; i < 512; i++) {
        *ram64(NPT0_PA + i * 8) = (i << 12) | PTE_TABLE;
        *ram64(NPT1_PA + i * 8) = (0x200000 + (i << 12)) | PTE_TABLE;
        *ram64(NPT_HI_PA + i * 8) = (L2_PT_PA + (i << 12)) | PTE_TABLE;
    }
    *ram64(NPD_HI_PA) = NPT_HI_PA | PTE_TABLE;
}

/*
 * L2's own page tables (at GPA L2_PT_GPA): the low 4 GiB identity
 * mapped by 2 MiB pages, like L1's.  With @shared, L2 uses L1's.
 */
static uint64_t build_l2_tables(int shared)
{
    if (shared) {
        return GUEST_PT_BASE;
    }
    zero(L2_PT_PA, 6 * 4096);
    *ram64(L2_PT_PA) = (L2_PT_GPA + 0x1000) | PTE_TABLE;
    for (uint64_t i = 0; i < 4; i++) {
        *ram64(L2_PT_PA + 0x1000 + i * 8) =
            (L2_PT_GPA + 0x2000 + i * 0x1000) | PTE_TABLE;
    }
    for (uint64_t i = 0; i < 2048; i++) {
        *ram64(L2_PT_PA + 0x2000 + i * 8) = (i << 21) | PTE_TABLE | PTE_PS;
    }
    return L2_PT_GPA;
}

static void build_vmcb(uint64_t l2_cr3, uint64_t efer)
{
    uint64_t gdt_base;
    uint16_t gdt_limit;
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } gdtr;

    zero(VMCB_PA, 4096);
    zero(IOPM_PA, 0x3000);
    zero(MSRPM_PA, 0x2000);
    asm volatile("sgdt %0" : "=m"(gdtr));
    gdt_base = gdtr.base;
    gdt_limit = gdtr.limit;

    *ram32(VMCB_PA + VMCB_INTERCEPT3) = 1u << 31;
    *ram32(VMCB_PA + VMCB_INTERCEPT4) = 3;
    *ram64(VMCB_PA + VMCB_IOPM) = IOPM_PA;
    *ram64(VMCB_PA + VMCB_MSRPM) = MSRPM_PA;
    *ram32(VMCB_PA + VMCB_ASID) = 1;
    *ram8(VMCB_PA + VMCB_TLB_CTL) = 1;
    *ram64(VMCB_PA + VMCB_NP_ENABLE) = 1;
    *ram64(VMCB_PA + VMCB_NCR3) = NPML4_PA;
    *ram32(VMCB_PA + VMCB_CLEAN) = 0;

    {
        uint64_t vmcb = VMCB_PA;

        /* FS, GS, TR, LDTR and the syscall MSRs: L1's. */
        asm volatile("vmsave %%rax" : : "a"(vmcb) : "memory");
    }
    set_seg(VMCB_ES, GUEST_SEL_DATA, 0xc93);
    set_seg(VMCB_CS, GUEST_SEL_CODE64, 0x29b);
    set_seg(VMCB_SS, GUEST_SEL_DATA, 0xc93);
    set_seg(VMCB_DS, GUEST_SEL_DATA, 0xc93);
    *ram32(VMCB_PA + VMCB_GDTR + 4) = gdt_limit;
    *ram64(VMCB_PA + VMCB_GDTR + 8) = gdt_base;
    *ram8(VMCB_PA + VMCB_CPL) = 0;
    *ram64(VMCB_PA + VMCB_EFER) = efer;
    *ram64(VMCB_PA + VMCB_CR0) = read_cr(0);
    *ram64(VMCB_PA + VMCB_CR3) = l2_cr3;
    *ram64(VMCB_PA + VMCB_CR4) = read_cr(4);
    *ram64(VMCB_PA + VMCB_DR7) = 0x400;
    *ram64(VMCB_PA + VMCB_DR6) = 0xffff0ff0;
    *ram64(VMCB_PA + VMCB_GPAT) = 0x0007040600070406ull;
}

static void record_exit(uint32_t n)
{
    uint32_t base = MB_NPT_EXITS + n * NPT_EXIT_SIZE;

    if (n >= NPT_MAX_EXITS) {
        return;
    }
    *mb64(base + NPT_EXIT_CODE) = *ram64(VMCB_PA + VMCB_EXITCODE);
    *mb64(base + NPT_EXIT_INFO1) = *ram64(VMCB_PA + VMCB_EXITINFO1);
    *mb64(base + NPT_EXIT_INFO2) = *ram64(VMCB_PA + VMCB_EXITINFO2);
    *mb64(base + NPT_EXIT_RIP) = *ram64(VMCB_PA + VMCB_RIP);
    *mb32(MB_NPT_NR_EXITS) = n + 1;
}

/* The NPT entry at @level (1 = leaf 4 KiB entry) on the way to @gpa. */
static uint64_t npt_entry_pa(uint64_t gpa, int level)
{
    uint64_t table = NPML4_PA;

    for (int l = 4; l > level; l--) {
        uint64_t e = *ram64(table + ((gpa >> (12 + 9 * (l - 1))) & 511) * 8);

        table = e & PTE_ADDR;
    }
    return table + ((gpa >> (12 + 9 * (level - 1))) & 511) * 8;
}

/*
 * NPT_SC_ROUNDS: nCR3 shares L1's page directory for GPA 0-1 GiB, and
 * L2 runs on L1's own page tables.  Each round L2 writes a pattern over
 * MB_NPT_COUNT pages at MB_NPT_GPA and exits; L1 checks every word,
 * then walks the shared tables itself and checks they still map
 * identity.
 */
static void scenario_rounds(void)
{
    uint32_t rounds = *mb32(MB_NPT_ROUNDS);
    uint64_t gpa = *mb32(MB_NPT_GPA);
    uint64_t pages = *mb32(MB_NPT_COUNT);
    uint32_t n = 0;

    build_npt(1);
    build_vmcb(build_l2_tables(1), rdmsr(MSR_EFER));
    for (uint32_t r = 0; r < rounds; r++) {
        uint64_t value = 0x4e50540000000000ull | r;

        l2_command(L2_PATTERN, gpa, pages, value);
        if (run_l2() != EXIT_VMMCALL) {
            record_exit(n++);
            *mb32(MB_NPT_STATUS) = NPT_FAIL;
            return;
        }
        for (uint64_t p = 0; p < pages; p++) {
            for (uint64_t o = 0; o < 4096; o += 512) {
                if (*ram64(gpa + p * 4096 + o) != (value ^ (p << 16) ^ o)) {
                    *mb64(MB_NPT_DETAIL) = gpa + p * 4096 + o;
                    *mb32(MB_NPT_STATUS) = NPT_FAIL;
                    return;
                }
            }
        }
        for (uint64_t p = 0; p < pages; p += 512) {
            uint64_t a = gpa + p * 4096;
            uint64_t e = *ram64(GUEST_PT_BASE + 0x2000 + (a >> 21) * 8);

            if ((e & PTE_ADDR & ~0x1fffffull) != (a & ~0x1fffffull)) {
                *mb64(MB_NPT_DETAIL) = e;
                *mb32(MB_NPT_STATUS) = NPT_FAIL;
                return;
            }
        }
        *mb32(MB_NPT_ROUNDS_DONE) = r + 1;
    }
    *mb32(MB_NPT_STATUS) = NPT_PASS;
}

/*
 * NPT_SC_FAULT: change the NPT entry at MB_NPT_LEVEL on the way to
 * MB_NPT_GPA (set MB_NPT_SET bits, clear MB_NPT_CLEAR bits), let L2
 * make access MB_NPT_ACCESS to MB_NPT_L2_ADDR (default MB_NPT_GPA; L2's
 * page tables are at GUEST_NPT_L2_GPA) and record the exit; then put
 * the entry back and resume L2 where it stopped, which must complete.
 * MB_NPT_FLAGS: NPT_F_NXE runs L1 (and so the nested walk) with
 * EFER.NXE set, NPT_F_SMEP with CR4.SMEP set (L2 runs without SMEP).
 */
static void scenario_fault(void)
{
    uint64_t gpa = *mb32(MB_NPT_GPA);
    uint64_t l2_addr = *mb32(MB_NPT_L2_ADDR) ? *mb32(MB_NPT_L2_ADDR) : gpa;
    int level = *mb32(MB_NPT_LEVEL);
    uint32_t access = *mb32(MB_NPT_ACCESS);
    uint64_t efer = rdmsr(MSR_EFER) & ~(uint64_t)EFER_NXE;
    int smep = !!(*mb32(MB_NPT_FLAGS) & NPT_F_SMEP);
    uint64_t entry_pa, old;
    uint32_t n = 0;
    uint32_t a, b, c, d;

    if (smep) {
        cpuid(7, &a, &b, &c, &d);
        if (!(b & (1u << 7))) {
            *mb32(MB_NPT_STATUS) = NPT_NO_SMEP;
            return;
        }
    }
    if (*mb32(MB_NPT_FLAGS) & NPT_F_NXE) {
        efer |= EFER_NXE;
    }
    wrmsr(MSR_EFER, efer);
    build_npt(0);
    build_vmcb(build_l2_tables(0), efer);
    if (smep) {
        /* After build_vmcb(), which gives L2 L1's CR4. */
        l1_smep(1);
    }
    *ram8(l2_addr) = 0xc3;                      /* ret, for L2_FETCH */
    entry_pa = npt_entry_pa(gpa, level);
    old = *ram64(entry_pa);
    *ram64(entry_pa) = (old | *mb64(MB_NPT_SET)) & ~*mb64(MB_NPT_CLEAR);
    *mb64(MB_NPT_ENTRY) = *ram64(entry_pa);
    l2_command(access, l2_addr, 0, 0x5a5a5a5a5a5a5a5aull);

    run_l2();
    record_exit(n++);
    *ram64(entry_pa) = old;
    if (*ram64(VMCB_PA + VMCB_EXITCODE) != EXIT_VMMCALL) {
        /* Resume the faulting instruction, as a hypervisor would. */
        for (int i = 0; i < 4 && run_l2() != EXIT_VMMCALL; i++) {
            record_exit(n++);
        }
        record_exit(n++);
    }
    if (smep) {
        l1_smep(0);
    }
    *mb32(MB_NPT_L2_DONE) = *ram32(L2_CMD_PA + L2_DONE);
    *mb64(MB_NPT_RESULT) = *ram64(L2_CMD_PA + L2_RESULT);
    *mb32(MB_NPT_STATUS) = NPT_PASS;
}

/*
 * NPT_SC_AD: L2 writes MB_NPT_GPA and reads MB_NPT_GPA + 4 KiB; the NPT
 * entries on both ways are left for the qtest to read (accessed and
 * dirty bits) at MB_NPT_AD: 4 levels for the written page, then 4 for
 * the read one, leaf first.
 */
static void scenario_ad(void)
{
    uint64_t gpa = *mb32(MB_NPT_GPA);

    build_npt(0);
    build_vmcb(build_l2_tables(0), rdmsr(MSR_EFER));
    l2_command(L2_WRITE, gpa, 0, 1);
    if (run_l2() != EXIT_VMMCALL) {
        record_exit(0);
        *mb32(MB_NPT_STATUS) = NPT_FAIL;
        return;
    }
    l2_command(L2_READ, gpa + 4096, 0, 0);
    if (run_l2() != EXIT_VMMCALL) {
        record_exit(0);
        *mb32(MB_NPT_STATUS) = NPT_FAIL;
        return;
    }
    for (int l = 1; l <= 4; l++) {
        *mb64(MB_NPT_AD + (l - 1) * 8) = *ram64(npt_entry_pa(gpa, l));
        *mb64(MB_NPT_AD + 32 + (l - 1) * 8) =
            *ram64(npt_entry_pa(gpa + 4096, l));
    }
    *mb32(MB_NPT_STATUS) = NPT_PASS;
}

/*
 * NPT_SC_REMAP: the NPT leaf for MB_NPT_GPA points at MB_NPT_TARGET
 * instead; L2 reads MB_NPT_GPA (MB_NPT_ROUNDS times, 0: until the qtest
 * sets MB_NPT_STOP), and the last value read is recorded.
 */
static void scenario_remap(void)
{
    uint64_t gpa = *mb32(MB_NPT_GPA);
    uint32_t rounds = *mb32(MB_NPT_ROUNDS);

    build_npt(0);
    build_vmcb(build_l2_tables(0), rdmsr(MSR_EFER));
    *ram64(npt_entry_pa(gpa, 1)) = (*mb64(MB_NPT_TARGET) & PTE_ADDR) |
                                    PTE_TABLE;
    for (uint32_t r = 0; rounds == 0 || r < rounds; r++) {
        if (*mb32(MB_NPT_STOP)) {
            break;
        }
        l2_command(L2_READ, gpa, 0, 0);
        if (run_l2() != EXIT_VMMCALL) {
            record_exit(0);
            *mb32(MB_NPT_STATUS) = NPT_FAIL;
            return;
        }
        *mb64(MB_NPT_RESULT) = *ram64(L2_CMD_PA + L2_RESULT);
        *mb32(MB_NPT_ROUNDS_DONE) = r + 1;
    }
    *mb32(MB_NPT_STATUS) = NPT_PASS;
}

/*
 * Page tables in the ROM (the image is the -bios ROM): the low 4 GiB
 * identity-mapped by 1 GiB pages (P, W, U, A, D, PS: 0xe7) under one
 * PML4E (P, W, U, A: 0x27), accessed and dirty bits set so that a walk
 * has nothing to write.  In assembly: the PML4E holds an address.
 */
asm(".pushsection .rodata.rom_tables, \"a\"\n"
    ".balign 4096\n"
    "rom_pml4:\n"
    "    .quad rom_pdpt + 0x27\n"
    "    .fill 511, 8, 0\n"
    "rom_pdpt:\n"
    "    .quad 0x000000e7, 0x400000e7, 0x800000e7, 0xc00000e7\n"
    "    .fill 508, 8, 0\n"
    ".popsection");

/*
 * NPT_SC_ROM_TABLES: L1 switches CR3 to page tables in its ROM, counts
 * MB_NPT_ROUNDS_DONE up to MB_NPT_ROUNDS and switches back.  On a host
 * with nested paging its walks of those tables meet a read-only mapping:
 * the walk accesses them as a write, and the host's nested tables map
 * ROM read-only.  No L2 is involved.
 */
static void scenario_rom_tables(void)
{
    uint32_t rounds = *mb32(MB_NPT_ROUNDS);
    uint64_t cr3 = read_cr(3), rom_cr3;
    uint32_t a, b, c, d;

    cpuid(0x80000001, &a, &b, &c, &d);
    if (!(d & (1u << 26))) {
        *mb32(MB_NPT_STATUS) = NPT_NO_1G;
        return;
    }
    asm("lea rom_pml4(%%rip), %0" : "=r"(rom_cr3));
    write_cr(3, rom_cr3);
    for (uint32_t i = 1; i <= rounds; i++) {
        *mb32(MB_NPT_ROUNDS_DONE) = i;
    }
    write_cr(3, cr3);
    *mb32(MB_NPT_STATUS) = NPT_PASS;
}

/* Called from entry.S (op64), which has no C prototypes. */
void npt_main(void)
{
    uint32_t a, b, c, d;

    cpuid(0x80000001, &a, &b, &c, &d);
    if (!(c & (1u << 2))) {
        *mb32(MB_NPT_STATUS) = NPT_NO_SVM;
        return;
    }
    cpuid(0x8000000a, &a, &b, &c, &d);
    if (!(d & 1)) {
        *mb32(MB_NPT_STATUS) = NPT_NO_NPT;
        return;
    }
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, HSAVE_PA);
    zero(L2_CMD_PA, 4096);

    switch (*mb32(MB_NPT_SCENARIO)) {
    case NPT_SC_ROUNDS:
        scenario_rounds();
        break;
    case NPT_SC_FAULT:
        scenario_fault();
        break;
    case NPT_SC_AD:
        scenario_ad();
        break;
    case NPT_SC_REMAP:
        scenario_remap();
        break;
    case NPT_SC_ROM_TABLES:
        scenario_rom_tables();
        break;
    default:
        *mb32(MB_NPT_STATUS) = NPT_FAIL;
    }
}
