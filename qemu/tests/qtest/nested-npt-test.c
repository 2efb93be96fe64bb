/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Nested SVM with nested paging (NPT), as an L1 hypervisor meets it.
 * The freestanding test guest turns into one (GUEST_OP_NPT,
 * tests/qtest/guest/npt.c): it runs a small L2 under a VMCB with nested
 * paging and records what L2 did and every #VMEXIT; this test judges the
 * values against the architecture (AMD64 Architecture Programmer's
 * Manual vol. 2: 15.25 "Nested Paging", 15.25.6 "Nested versus Guest
 * Page Faults, Fault Ordering" for EXITINFO1/EXITINFO2; 5.3 "Long-Mode
 * Page Translation" and 5.4 for the entry formats and reserved bits).
 *
 * - shared tables: nCR3 shares L1's own page directory and L2 runs on
 *   L1's own page tables (the setup behind Linux 6.12 commit
 *   2fb2b7877b3a, where KVM write-protects tables L1 itself walks);
 *   many rounds of L2 writing a pattern, L1 checking it and walking the
 *   shared tables, all complete;
 * - one NPT entry changed (present, writable, user, NX with and without
 *   L1's EFER.NXE, reserved bits at every level), on the way to the
 *   final GPA and to L2's own page tables (the NPF during L2's page
 *   walk, EXITINFO1 bit 33): the exact EXITINFO1, EXITINFO2, and L2
 *   resuming once L1 puts the entry back;
 * - L2 fetching through a faulting NPT entry, for each cause under each
 *   combination of L1's EFER.NXE and CR4.SMEP: EXITINFO1 has I/D when
 *   either is set, except on L2's page walk;
 * - L1 itself on page tables in its ROM, which its host's nested
 *   tables map read-only (a write fault on L1's page walk that unprotects
 *   nothing, the other half of 2fb2b7877b3a): L1 finishes;
 * - accessed and dirty bits in the nested tables after L2 ran;
 * - an NPT entry pointing at an L1 address with no RAM: L2's read
 *   completes, and QEMU reports no guest-memory fault;
 * - an L2 page backed by L1 RAM whose host file is truncated under the
 *   running L2: QEMU's report names the L1 guest-physical address.
 *
 * TCG always (QEMU's own SVM/NPT emulation).  KVM when the host
 * exposes nested SVM with NPT (KVM_GET_SUPPORTED_CPUID); the test
 * skips there with that reason otherwise.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "guest/guest-qtest.h"

#define MB(f)           (GUEST_MAILBOX_GPA + (f))
#define EXIT_VMMCALL    0x81
#define EXIT_NPF        0x400

/* EXITINFO1 of an NPF: the #PF error code bits, and where it was met. */
#define PF_P            0x1ull
#define PF_W            0x2ull
#define PF_U            0x4ull
#define PF_RSV          0x8ull
#define PF_ID           0x10ull
#define NPF_GPA         (1ull << 32)    /* on the final guest address */
#define NPF_GPT         (1ull << 33)    /* in L2's guest page walk */

/* NX and the reserved bits tried (guest-abi.h has the others). */
#define PTE_NX          (1ull << 63)
#define PTE_BIT8        0x100ull
#define PTE_BIT13       0x2000ull
#define PTE_BIT51       (1ull << 51)

#define DATA_GPA        0x300000        /* behind a 4 KiB NPT leaf */
#define DATA_2M_GPA     0x600000        /* behind a 2 MiB NPT leaf */
#define L2_CR3          GUEST_NPT_L2_GPA

static bool kvm_nested_npt(const char **reason)
{
    struct kvm_cpuid2 *cpuid = NULL;
    bool svm = false, npt = false;
    int fd = open("/dev/kvm", O_RDWR);
    int nent = 64;

    if (fd < 0) {
        *reason = "/dev/kvm cannot be opened";
        return false;
    }
    for (;;) {
        g_free(cpuid);
        cpuid = g_malloc0(sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
        cpuid->nent = nent;
        if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
            break;
        }
        if (errno != E2BIG || nent >= 4096) {
            g_free(cpuid);
            close(fd);
            *reason = "KVM_GET_SUPPORTED_CPUID failed";
            return false;
        }
        nent *= 2;
    }
    for (unsigned i = 0; i < cpuid->nent; i++) {
        if (cpuid->entries[i].function == 0x80000001) {
            svm = cpuid->entries[i].ecx & (1u << 2);
        } else if (cpuid->entries[i].function == 0x8000000a) {
            npt = cpuid->entries[i].edx & 1;
        }
    }
    g_free(cpuid);
    close(fd);
    if (!svm || !npt) {
        *reason = "KVM does not expose nested SVM with NPT "
                  "(KVM_GET_SUPPORTED_CPUID has no SVM or no NPT; "
                  "kvm_amd nested=1 on an AMD host has both)";
        return false;
    }
    return true;
}

static bool accel_ok(const char *accel)
{
    const char *reason;

    if (!guest_accel_usable(accel, &reason) ||
        (g_str_equal(accel, "kvm") && !kvm_nested_npt(&reason))) {
        g_test_skip(reason);
        return false;
    }
    return true;
}

static GuestVM *start_l1(const char *accel, const char *memory,
                         uint32_t scenario)
{
    GuestVMConfig cfg = {
        .accel = accel, .memory = memory, .capture_stderr = true,
    };
    GuestVM *vm = guest_vm_start_config(&cfg);

    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_NPT);
    guest_vm_request(vm, MB_NPT_SCENARIO, scenario);
    return vm;
}

static void request64(GuestVM *vm, uint32_t field, uint64_t value)
{
    guest_vm_request(vm, field, value);
    guest_vm_request(vm, field + 4, value >> 32);
}

static uint64_t exit_field(GuestVM *vm, int n, uint32_t field)
{
    return qtest_readq(vm->qts, MB(MB_NPT_EXITS + n * NPT_EXIT_SIZE + field));
}

/* Run the L1 to its end, within @timeout_ms; it must say it passed. */
static void run_l1_within(GuestVM *vm, unsigned timeout_ms)
{
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, timeout_ms));
    g_assert_cmphex(qtest_readl(vm->qts, MB(MB_NPT_STATUS)), ==, NPT_PASS);
}

/*
 * run_l1_within(), for a scenario that needs a CPU feature: when L1
 * reports status @missing, the case is skipped with @why, @vm freed and
 * false returned.
 */
static bool run_l1_needing(GuestVM *vm, unsigned timeout_ms,
                           uint32_t missing, const char *why)
{
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, timeout_ms));
    if (qtest_readl(vm->qts, MB(MB_NPT_STATUS)) == missing) {
        g_test_skip(why);
        guest_vm_free(vm);
        return false;
    }
    g_assert_cmphex(qtest_readl(vm->qts, MB(MB_NPT_STATUS)), ==, NPT_PASS);
    return true;
}

static void run_l1(GuestVM *vm)
{
    run_l1_within(vm, 30000);
}

/* --- shared tables --- */

/*
 * KVM's per-vCPU count @name of vCPU 0 (query-stats), or -1 where there
 * is none (TCG).
 */
static int64_t kvm_vcpu_stat(QTestState *qts, const char *name)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-stats', 'arguments': "
                           "{ 'target': 'vcpu', 'providers': [ "
                           "{ 'provider': 'kvm', 'names': [ %s ] } ] } }",
                           name);
    /*
     * [ { "provider": "kvm", "qom-path": <vCPU 0>, "stats": [ { "name",
     * "value" } ] }, ...one per vCPU ]; an unknown name is dropped.
     */
    QList *vcpus = qdict_get_qlist(rsp, "return");
    QDict *vcpu0 = vcpus ? qobject_to(QDict, qlist_peek(vcpus)) : NULL;
    QList *stats = vcpu0 ? qdict_get_qlist(vcpu0, "stats") : NULL;
    int64_t value = -1;
    QListEntry *e;

    if (stats) {
        QLIST_FOREACH_ENTRY(stats, e) {
            QDict *st = qobject_to(QDict, qlist_entry_obj(e));

            if (g_str_equal(qdict_get_str(st, "name"), name)) {
                value = qdict_get_int(st, "value");
            }
        }
    }
    qobject_unref(rsp);
    return value;
}

/*
 * On KVM, with L1's tables shared into nCR3, L1's own page walks hit
 * tables KVM write-protects while shadowing NPT12.  Before Linux 6.12
 * (commit 2fb2b7877b3a) KVM could unprotect and retry without end; since
 * then it emulates where unprotecting zaps nothing.  Every round must
 * finish.  How many emulations each kernel needs is reported, not
 * bounded: in the KVM box (TCG's SVM, no decode assists, under each
 * kernel) 16 rounds of 256 pages took about 233,800 pf_emulate on 6.1,
 * 6.12 and 7.2 alike, so a per-round bound told nothing apart.
 */
#define ROUNDS          64
/*
 * On KVM each round is L1 running L2 under KVM's shadow NPT, and every
 * emulation is a full exit: far slower than TCG's, all the more when the
 * KVM host is itself a TCG guest (the KVM box: about 5 s a round).
 */
#define KVM_ROUNDS      4
#define ROUND_PAGES     256
#define ROUND_GPA       0x400000

static void test_shared_tables(const void *opaque)
{
    const char *accel = opaque;
    bool kvm = g_str_equal(accel, "kvm");
    int rounds = kvm ? KVM_ROUNDS : ROUNDS;
    int64_t before;
    GuestVM *vm;

    if (!accel_ok(accel)) {
        return;
    }
    vm = start_l1(accel, NULL, NPT_SC_ROUNDS);
    guest_vm_request(vm, MB_NPT_ROUNDS, rounds);
    guest_vm_request(vm, MB_NPT_GPA, ROUND_GPA);
    guest_vm_request(vm, MB_NPT_COUNT, ROUND_PAGES);
    before = kvm_vcpu_stat(vm->qts, "pf_emulate");
    run_l1_within(vm, 300000);
    g_assert_cmpuint(qtest_readl(vm->qts, MB(MB_NPT_ROUNDS_DONE)), ==, rounds);
    if (kvm) {
        int64_t after = kvm_vcpu_stat(vm->qts, "pf_emulate");

        g_test_message("KVM pf_emulate: %" PRId64 " over %d rounds, "
                       "pf_taken %" PRId64 ", pf_fixed %" PRId64,
                       after - before, rounds,
                       kvm_vcpu_stat(vm->qts, "pf_taken"),
                       kvm_vcpu_stat(vm->qts, "pf_fixed"));
        g_assert_cmpint(before, >=, 0);
        g_assert_cmpint(after, >=, before);
    }
    guest_vm_free(vm);
}

/* --- L1 on page tables in its ROM --- */

#define ROM_ROUNDS      3

/*
 * L1 walks page tables in its ROM, which KVM maps read-only in the
 * nested tables it gives L1.  The walk accesses a table as a write, so
 * L1's walks take write faults "on a guest page table" (EXITINFO1 bit
 * 33) on a page that is no shadowed table: the case of KVM's fast
 * unprotect (arch/x86/kvm/mmu/mmu.c, kvm_mmu_page_fault()) in which
 * nothing gets unprotected, where Linux 6.12's 2fb2b7877b3a ("Skip
 * emulation on page fault iff 1+ SPs were unprotected") emulates rather
 * than resumes.  L1 must finish on every kernel, and on TCG; on KVM the
 * test reports how many page faults KVM emulated for it.
 */
static void test_rom_tables(const void *opaque)
{
    const char *accel = opaque;
    int64_t before;
    GuestVM *vm;

    if (!accel_ok(accel)) {
        return;
    }
    vm = start_l1(accel, NULL, NPT_SC_ROM_TABLES);
    guest_vm_request(vm, MB_NPT_ROUNDS, ROM_ROUNDS);
    before = kvm_vcpu_stat(vm->qts, "pf_emulate");
    if (!run_l1_needing(vm, 20000, NPT_NO_1G, "the vCPU has no 1 GiB "
                        "pages (CPUID 0x80000001:EDX bit 26)")) {
        return;
    }
    g_assert_cmpuint(qtest_readl(vm->qts, MB(MB_NPT_ROUNDS_DONE)), ==,
                     ROM_ROUNDS);
    if (g_str_equal(accel, "kvm")) {
        g_test_message("KVM pf_emulate: %+" PRId64 " for L1 on page tables "
                       "in ROM", kvm_vcpu_stat(vm->qts, "pf_emulate") -
                       before);
    }
    guest_vm_free(vm);
}

/* --- one NPT entry changed --- */

typedef struct FaultCase {
    const char *name;
    uint32_t gpa;               /* the entry is on the way to this GPA */
    uint32_t l2_addr;           /* what L2 touches (0: gpa) */
    int level;                  /* 1: the 4 KiB leaf ... 4: the PML4E */
    uint32_t access;
    uint64_t set, clear;
    uint32_t flags;
    bool no_fault;              /* the change must not fault */
    uint64_t info1;             /* EXITINFO1 expected */
    uint64_t info2_lo, info2_hi; /* EXITINFO2 expected in [lo, hi] */
} FaultCase;

#define FINAL(x)    (NPF_GPA | PF_U | (x))
#define WALK(x)     (NPF_GPT | PF_U | PF_W | (x))

static const FaultCase fault_cases[] = {
    /* Not present: U, plus W for a write (fetches: fetch_causes). */
    { "not-present/read", DATA_GPA, 0, 1, NPT_ACCESS_READ, 0, PTE_P, 0,
      false, FINAL(0), DATA_GPA, DATA_GPA },
    { "not-present/write", DATA_GPA, 0, 1, NPT_ACCESS_WRITE, 0, PTE_P, 0,
      false, FINAL(PF_W), DATA_GPA, DATA_GPA },
    { "not-present/pde", DATA_GPA, 0, 2, NPT_ACCESS_READ, 0, PTE_P, 0,
      false, FINAL(0), DATA_GPA, DATA_GPA },
    /* Read-only: a write faults, a read does not. */
    { "read-only/write", DATA_GPA, 0, 1, NPT_ACCESS_WRITE, 0, PTE_W, 0,
      false, FINAL(PF_P | PF_W), DATA_GPA, DATA_GPA },
    { "read-only/read", DATA_GPA, 0, 1, NPT_ACCESS_READ, 0, PTE_W, 0,
      true },
    { "read-only/pde-write", DATA_GPA, 0, 2, NPT_ACCESS_WRITE, 0, PTE_W, 0,
      false, FINAL(PF_P | PF_W), DATA_GPA, DATA_GPA },
    /* Every NPT access is a user access. */
    { "supervisor/read", DATA_GPA, 0, 1, NPT_ACCESS_READ, 0, PTE_U, 0,
      false, FINAL(PF_P), DATA_GPA, DATA_GPA },
    { "supervisor/pde", DATA_GPA, 0, 2, NPT_ACCESS_READ, 0, PTE_U, 0,
      false, FINAL(PF_P), DATA_GPA, DATA_GPA },
    /* NX: a read goes through; without L1's EFER.NXE NX is reserved. */
    { "nx/read-nxe", DATA_GPA, 0, 1, NPT_ACCESS_READ, PTE_NX, 0, NPT_F_NXE,
      true },
    { "nx/read-no-nxe", DATA_GPA, 0, 1, NPT_ACCESS_READ, PTE_NX, 0, 0,
      false, FINAL(PF_P | PF_RSV), DATA_GPA, DATA_GPA },
    /* Reserved bits: P is set (the entry is present), and RSV. */
    { "reserved/pte-maxphyaddr", DATA_GPA, 0, 1, NPT_ACCESS_READ,
      PTE_BIT51, 0, 0, false, FINAL(PF_P | PF_RSV), DATA_GPA, DATA_GPA },
    { "reserved/pde-maxphyaddr", DATA_GPA, 0, 2, NPT_ACCESS_READ,
      PTE_BIT51, 0, 0, false, FINAL(PF_P | PF_RSV), DATA_GPA, DATA_GPA },
    { "reserved/pde-2m-bit13", DATA_2M_GPA, 0, 2, NPT_ACCESS_READ,
      PTE_BIT13, 0, 0, false, FINAL(PF_P | PF_RSV), DATA_2M_GPA, DATA_2M_GPA },
    /*
     * The PDPE for GPA 0-1 GiB also maps L2's stack and command block:
     * L2's first access through it faults, whichever that is.
     */
    { "reserved/pdpe-maxphyaddr", DATA_GPA, 0, 3, NPT_ACCESS_READ,
      PTE_BIT51, 0, 0, false, FINAL(PF_P | PF_RSV), 0, 0x3fffffff },
    /*
     * Bit 8 of a non-leaf PDPE is ignored, not reserved (AMD reserves it
     * in PML4Es only; Linux 5ecad245de2a fixed KVM's check to match).
     */
    { "ignored/pdpe-bit8", DATA_GPA, 0, 3, NPT_ACCESS_READ,
      PTE_BIT8, 0, 0, true },
    /* The PML4E also maps L2's page tables: the walk meets it first. */
    { "reserved/pml4e-maxphyaddr", DATA_GPA, 0, 4, NPT_ACCESS_READ,
      PTE_BIT51, 0, 0, false, WALK(PF_P | PF_RSV), L2_CR3, L2_CR3 },
    { "reserved/pml4e-bit7", DATA_GPA, 0, 4, NPT_ACCESS_READ,
      PTE_PS, 0, 0, false, WALK(PF_P | PF_RSV), L2_CR3, L2_CR3 },
    { "reserved/pml4e-bit8", DATA_GPA, 0, 4, NPT_ACCESS_READ,
      PTE_BIT8, 0, 0, false, WALK(PF_P | PF_RSV), L2_CR3, L2_CR3 },
    /*
     * The NPT entries that map L2's own page-table page: the NPF comes
     * during L2's page walk (a write: the walk may set A/D bits), with
     * the guest table's GPA in EXITINFO2.
     */
    { "walk/read-only", L2_CR3, DATA_GPA, 1, NPT_ACCESS_READ, 0, PTE_W, 0,
      false, WALK(PF_P), L2_CR3, L2_CR3 },
    { "walk/not-present", L2_CR3, DATA_GPA, 1, NPT_ACCESS_READ, 0, PTE_P, 0,
      false, WALK(0), L2_CR3, L2_CR3 },
    { "walk/supervisor", L2_CR3, DATA_GPA, 1, NPT_ACCESS_READ, 0, PTE_U, 0,
      false, WALK(PF_P), L2_CR3, L2_CR3 },
    { "walk/reserved", L2_CR3, DATA_GPA, 1, NPT_ACCESS_READ, PTE_BIT51, 0,
      0, false, WALK(PF_P | PF_RSV), L2_CR3, L2_CR3 },
    { "walk/reserved-pde", L2_CR3, DATA_GPA, 2, NPT_ACCESS_READ, PTE_BIT51,
      0, 0, false, WALK(PF_P | PF_RSV), L2_CR3, L2_CR3 },
    { "walk/ignored-pdpe-bit8", L2_CR3, DATA_GPA, 3, NPT_ACCESS_READ,
      PTE_BIT8, 0, 0, true },
};

/*
 * L2 fetches through a faulting NPT entry.  EXITINFO1 has I/D when L1,
 * whose EFER and CR4 at VMRUN the nested walk uses, runs with EFER.NXE
 * or CR4.SMEP, as for the I/D bit of a #PF error code (KVM: the NPT MMU
 * is made from vmcb01's CR4 and EFER, FNAME(walk_addr_generic) sets
 * PFERR_FETCH_MASK with is_efer_nx() or is_cr4_smep(); kvm-unit-tests
 * svm_npt expects the same).  An NPF during L2's own page walk is a data
 * access: no I/D.  Each cause runs under the four combinations.
 */
typedef struct FetchCause {
    const char *name;
    uint32_t gpa;               /* the entry is on the way to this GPA */
    int level;
    uint64_t set, clear;
    uint64_t info1, info1_no_nxe; /* EXITINFO1 without I/D */
} FetchCause;

static const FetchCause fetch_causes[] = {
    { "not-present", DATA_GPA, 1, 0, PTE_P, FINAL(0), FINAL(0) },
    { "not-present-pde", DATA_GPA, 2, 0, PTE_P, FINAL(0), FINAL(0) },
    { "reserved", DATA_GPA, 1, PTE_BIT51, 0, FINAL(PF_P | PF_RSV),
      FINAL(PF_P | PF_RSV) },
    { "reserved-2m", DATA_2M_GPA, 2, PTE_BIT13, 0, FINAL(PF_P | PF_RSV),
      FINAL(PF_P | PF_RSV) },
    /* Without EFER.NXE, NX is a reserved bit, at every level. */
    { "nx", DATA_GPA, 1, PTE_NX, 0, FINAL(PF_P), FINAL(PF_P | PF_RSV) },
    { "nx-pde", DATA_GPA, 2, PTE_NX, 0, FINAL(PF_P), FINAL(PF_P | PF_RSV) },
    /* The entry that maps L2's page-table page: the walk faults. */
    { "walk", L2_CR3, 1, 0, PTE_P, WALK(0), WALK(0) },
};

static const struct {
    const char *name;
    uint32_t flags;
} fetch_modes[] = {
    { "plain", 0 },
    { "nxe", NPT_F_NXE },
    { "smep", NPT_F_SMEP },
    { "nxe-smep", NPT_F_NXE | NPT_F_SMEP },
};

/* The FaultCase of @cause under L1 flags @flags. */
static FaultCase fetch_case(const FetchCause *cause, uint32_t flags)
{
    bool walk = cause->gpa == L2_CR3;
    FaultCase c = {
        .gpa = cause->gpa, .l2_addr = walk ? DATA_GPA : 0,
        .level = cause->level, .access = NPT_ACCESS_FETCH,
        .set = cause->set, .clear = cause->clear, .flags = flags,
        .info1 = flags & NPT_F_NXE ? cause->info1 : cause->info1_no_nxe,
        .info2_lo = cause->gpa, .info2_hi = cause->gpa,
    };

    if (!walk && (flags & (NPT_F_NXE | NPT_F_SMEP))) {
        c.info1 |= PF_ID;
    }
    return c;
}

typedef struct FaultRun {
    const char *accel;
    FaultCase c;
} FaultRun;

static void test_fault(const void *opaque)
{
    const FaultRun *r = opaque;
    const FaultCase *c = &r->c;
    uint32_t last;
    GuestVM *vm;

    if (!accel_ok(r->accel)) {
        return;
    }
    vm = start_l1(r->accel, NULL, NPT_SC_FAULT);
    guest_vm_request(vm, MB_NPT_GPA, c->gpa);
    guest_vm_request(vm, MB_NPT_L2_ADDR, c->l2_addr);
    guest_vm_request(vm, MB_NPT_LEVEL, c->level);
    guest_vm_request(vm, MB_NPT_ACCESS, c->access);
    guest_vm_request(vm, MB_NPT_FLAGS, c->flags);
    request64(vm, MB_NPT_SET, c->set);
    request64(vm, MB_NPT_CLEAR, c->clear);
    if (!run_l1_needing(vm, 30000, NPT_NO_SMEP,
                        "the vCPU has no SMEP (CPUID 7.0:EBX bit 7)")) {
        return;
    }

    if (c->no_fault) {
        g_assert_cmphex(exit_field(vm, 0, NPT_EXIT_CODE), ==, EXIT_VMMCALL);
    } else {
        g_assert_cmphex(exit_field(vm, 0, NPT_EXIT_CODE), ==, EXIT_NPF);
        g_assert_cmphex(exit_field(vm, 0, NPT_EXIT_INFO1), ==, c->info1);
        g_assert_cmphex(exit_field(vm, 0, NPT_EXIT_INFO2), >=, c->info2_lo);
        g_assert_cmphex(exit_field(vm, 0, NPT_EXIT_INFO2), <=, c->info2_hi);
    }
    /* The entry put back, L2 resumes where it stopped and finishes. */
    last = qtest_readl(vm->qts, MB(MB_NPT_NR_EXITS)) - 1;
    g_assert_cmphex(exit_field(vm, last, NPT_EXIT_CODE), ==, EXIT_VMMCALL);
    g_assert_cmpuint(qtest_readl(vm->qts, MB(MB_NPT_L2_DONE)), ==, 1);
    if (c->access == NPT_ACCESS_WRITE) {
        g_assert_cmphex(qtest_readq(vm->qts, c->l2_addr ? c->l2_addr : c->gpa),
                        ==, 0x5a5a5a5a5a5a5a5aull);
    }
    guest_vm_free(vm);
}

/* --- accessed and dirty bits --- */

static void test_accessed_dirty(const void *opaque)
{
    const char *accel = opaque;
    GuestVM *vm;

    if (!accel_ok(accel)) {
        return;
    }
    vm = start_l1(accel, NULL, NPT_SC_AD);
    guest_vm_request(vm, MB_NPT_GPA, DATA_GPA);
    run_l1(vm);
    for (int l = 0; l < 4; l++) {
        uint64_t w = qtest_readq(vm->qts, MB(MB_NPT_AD + l * 8));
        uint64_t r = qtest_readq(vm->qts, MB(MB_NPT_AD + 32 + l * 8));

        /* Accessed on every level walked. */
        g_assert_cmphex(w & PTE_A, ==, PTE_A);
        g_assert_cmphex(r & PTE_A, ==, PTE_A);
        if (l == 0) {
            /* Dirty on the leaf that was written, not on the read one. */
            g_assert_cmphex(w & PTE_D, ==, PTE_D);
            g_assert_cmphex(r & PTE_D, ==, 0);
        }
    }
    guest_vm_free(vm);
}

/* --- where the NPT points --- */

#define L1_NO_RAM       0x50000000      /* nothing there on pc, 64 MiB */
#define L1_HIGH_RAM     0x3000000       /* 48 MiB: past a 44 MiB file */
#define CUT_SIZE        0x2c00000       /* keeps L2's tables at 40 MiB */

/* An NPT leaf to an L1 address with nothing behind it. */
static void test_no_ram(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *err = NULL;
    GuestVM *vm;

    if (!accel_ok(accel)) {
        return;
    }
    vm = start_l1(accel, NULL, NPT_SC_REMAP);
    guest_vm_request(vm, MB_NPT_GPA, DATA_GPA);
    request64(vm, MB_NPT_TARGET, L1_NO_RAM);
    guest_vm_request(vm, MB_NPT_ROUNDS, 3);
    run_l1(vm);
    g_assert_cmpuint(qtest_readl(vm->qts, MB(MB_NPT_ROUNDS_DONE)), ==, 3);
    g_assert_null(qtest_qmp_event_ref(vm->qts, "GUEST_MEMORY_FAULT"));
    err = guest_vm_stderr(vm);
    g_assert_null(strstr(err, "guest memory fault"));
    guest_vm_free(vm);
}

/*
 * L2 reads a page that NPT maps to L1's RAM at 48 MiB, in a loop; the
 * backing file is cut to 44 MiB under it.  The report names the L1
 * guest-physical address, which is what QEMU's RAM is addressed by: the
 * page where the exit gives one, the lost range where KVM_RUN fails with
 * a bare -EFAULT.
 */
static void test_lost_ram(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *dir = g_dir_make_tmp("nested-npt-test-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "ram", NULL);
    g_autofree char *memory = g_strdup_printf(
        "memory-backend-file,id=ram0,size=64M,mem-path=%s,share=on,"
        "backing-watch=off", path);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    QDict *ev, *data;
    GuestVM *vm;

    if (!accel_ok(accel)) {
        rmdir(dir);
        return;
    }
    vm = start_l1(accel, memory, NPT_SC_REMAP);
    guest_vm_request(vm, MB_NPT_GPA, DATA_GPA);
    request64(vm, MB_NPT_TARGET, L1_HIGH_RAM);
    guest_vm_request(vm, MB_NPT_ROUNDS, 0);
    guest_vm_resume(vm);
    while (qtest_readl(vm->qts, MB(MB_NPT_ROUNDS_DONE)) < 1) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    g_assert_cmpint(truncate(path, CUT_SIZE), ==, 0);
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 20000);
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    if (g_str_equal(qdict_get_str(data, "path"), "vcpu-run")) {
        /*
         * Bare -EFAULT from KVM_RUN, as every released VMX/SVM kernel
         * gives it: no GPA, so the report names the whole lost range.
         */
        g_assert_cmpstr(accel, ==, "kvm");
        g_assert_cmphex(qdict_get_int(data, "gpa"), ==, CUT_SIZE);
        g_assert_cmphex(qdict_get_int(data, "size"), ==,
                        64 * 1024 * 1024 - CUT_SIZE);
    } else {
        g_assert_cmphex(qdict_get_int(data, "gpa"), ==, L1_HIGH_RAM);
        g_assert_cmphex(qdict_get_int(data, "size"), ==, 0x1000);
    }
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    qobject_unref(ev);
    guest_vm_assert_internal_error(vm->qts);
    guest_vm_free(vm);
    unlink(path);
    rmdir(dir);
}

static void test_skip(const void *opaque)
{
    g_test_skip(opaque);
}

static void add_fault(const char *ac, const char *name, const FaultCase *c)
{
    FaultRun *r = g_new0(FaultRun, 1);
    g_autofree char *p = g_strdup_printf("/x86/nested-npt/%s/fault/%s", ac,
                                         name);

    r->accel = ac;
    r->c = *c;
    qtest_add_data_func_full(p, r, test_fault, g_free);
}

static void add_accel(const char *ac)
{
    static const struct {
        const char *name;
        GTestDataFunc fn;
    } simple[] = {
        { "shared-tables", test_shared_tables },
        { "accessed-dirty", test_accessed_dirty },
        { "no-ram", test_no_ram },
        { "rom-tables", test_rom_tables },
        { "lost-ram", test_lost_ram },
    };

    for (int i = 0; i < ARRAY_SIZE(simple); i++) {
        g_autofree char *p = g_strdup_printf("/x86/nested-npt/%s/%s", ac,
                                             simple[i].name);

        qtest_add_data_func(p, ac, simple[i].fn);
    }
    for (int i = 0; i < ARRAY_SIZE(fault_cases); i++) {
        add_fault(ac, fault_cases[i].name, &fault_cases[i]);
    }
    for (int i = 0; i < ARRAY_SIZE(fetch_causes); i++) {
        for (int m = 0; m < ARRAY_SIZE(fetch_modes); m++) {
            g_autofree char *name = g_strdup_printf("fetch/%s/%s",
                                                    fetch_causes[i].name,
                                                    fetch_modes[m].name);
            FaultCase c = fetch_case(&fetch_causes[i], fetch_modes[m].flags);

            add_fault(ac, name, &c);
        }
    }
}

int main(int argc, char **argv)
{
    static const char *const accels[] = { "tcg", "kvm" };
    const char *reason;

    g_test_init(&argc, &argv, NULL);
    for (int a = 0; a < ARRAY_SIZE(accels); a++) {
        if (guest_accel_usable(accels[a], &reason) &&
            (!g_str_equal(accels[a], "kvm") || kvm_nested_npt(&reason))) {
            add_accel(accels[a]);
        } else {
            /* The reason once, not once per case. */
            g_autofree char *p = g_strdup_printf("/x86/nested-npt/%s",
                                                 accels[a]);

            qtest_add_data_func(p, reason, test_skip);
        }
    }
    return g_test_run();
}
