/*
 * TDX launch and initial-memory population, end to end
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Contract test.  Without TDX hardware, the real qemu-system-x86_64
 * launches a TD (-machine q35,confidential-guest-support=tdx0 -object
 * tdx-guest -cpu host) against tests/qtest/kvm-contract/tdx-contract.c,
 * an LD_PRELOAD model of the TDX kernel contract
 * (docs/devel/kvm-kernel-contract.rst sections 1, 2, 6 and 7) over the
 * real KVM, up to KVM_TDX_FINALIZE_VM; the layer then stops the TD at its
 * first KVM_RUN and QEMU exits.  The TDVF image is OVMF.fd where QEMU's
 * firmware search path has it (Debian's package ovmf; the case skips,
 * naming the directories searched, without it) or one the test
 * generates.  The layer logs every TDX command; the test checks the exact
 * sequence, flags, regions and the data added, the resume after -EINTR,
 * the -EBUSY retry, the bounded no-progress error, the message for each
 * injected failure, malformed TDVF metadata, and that QEMU never hangs.
 * KVM_TDX_GET_CPUID answering -E2BIG with the needed nent (the contract)
 * crashes QEMU 10.2.2 (a use after free).
 *
 * Why the launches do not go through libqtest: the population happens at
 * machine-init-done, before QEMU serves QMP, and most cases are about
 * how that fails: QEMU must exit with a message and a status, which
 * qtest_init() cannot survive (it asserts that QEMU connects).  So each
 * launch is a plain process with the layer preloaded, run under
 * timeout(1) so that a QEMU that would hang (QEMU 10.2.2 retries a
 * no-progress -EAGAIN forever) ends the case instead of the test run.
 * The cases that need a running QEMU (real-tdx, the property) use
 * libqtest.
 *
 * On a host whose KVM has KVM_X86_TDX_VM the layer is not used: the
 * real-tdx case launches on the real kernel; elsewhere it skips.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

#define OVMF_NAME       "OVMF.fd"   /* Debian's ovmf: a TDVF with metadata */
#define RUN_TIMEOUT     "30"

/* TDVF metadata: hw/i386/tdvf.c, docs/devel/kvm-kernel-contract.rst s. 7 */
#define TDVF_SIGNATURE  0x46564454
#define SEC_BFV         0
#define SEC_CFV         1
#define SEC_TD_HOB      2
#define SEC_TEMP_MEM    3
#define MR_EXTEND       1

typedef struct Section {
    uint32_t data_offset, raw_size;
    uint64_t address, size;
    uint32_t type, attributes;
} Section;

typedef struct Run {
    int status;             /* exit code; -1 if killed by a signal */
    char *err;              /* stderr */
    char **log;             /* the layer's "tdx ..." lines */
} Run;

static void run_free(Run *r)
{
    g_free(r->err);
    g_strfreev(r->log);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Run, run_free)

/* Run the layer as a kernel with in-place guest_memfd conversion. */
static bool model_in_place;

static bool kvm_usable(void)
{
    return access("/dev/kvm", R_OK | W_OK) == 0;
}

static bool real_tdx(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int types = kvm < 0 ? 0 : ioctl(kvm, KVM_CHECK_EXTENSION,
                                    KVM_CAP_VM_TYPES);

    if (kvm >= 0) {
        close(kvm);
    }
    return types > 0 && (types & (1 << KVM_X86_TDX_VM));
}

static bool contract_usable(void)
{
    if (!kvm_usable()) {
        g_test_skip("/dev/kvm is not usable here");
        return false;
    }
    if (real_tdx()) {
        g_test_skip("the kernel has KVM_X86_TDX_VM: the contract layer is "
                    "off, see /x86/tdx/real-tdx");
        return false;
    }
    return true;
}

/*
 * OVMF.fd where QEMU would find it for "-bios OVMF.fd": the first of its
 * firmware search directories ("-L help") that has it.  NULL, with
 * *@why saying where it looked, when none has.
 */
static char *find_ovmf(char **why)
{
    g_autofree char *cmd = g_strdup_printf("%s -L help",
                                           qtest_qemu_binary(NULL));
    g_autofree char *out = NULL;
    g_auto(GStrv) dirs = NULL;
    int status;

    g_assert_true(g_spawn_command_line_sync(cmd, &out, NULL, &status, NULL));
    dirs = g_strsplit(g_strstrip(out), "\n", -1);
    for (char **d = dirs; *d; d++) {
        char *path = g_build_filename(*d, OVMF_NAME, NULL);

        if (!access(path, R_OK)) {
            return path;
        }
        g_free(path);
    }
    g_autofree char *searched = g_strjoinv(", ", dirs);

    *why = g_strdup_printf(OVMF_NAME " is not in QEMU's firmware search "
                           "path (%s; Debian package ovmf puts it there)",
                           searched);
    return NULL;
}

/*
 * Launch a TD from @image with the layer and @inject; returns what
 * happened.  @extra: more -object tdx-guest properties.
 */
static void launch(Run *r, const char *image, const char *inject,
                   const char *tdx_props)
{
    g_autofree char *dir = g_dir_make_tmp("tdx-test-XXXXXX", NULL);
    g_autofree char *log = g_build_filename(dir, "contract.log", NULL);
    g_autofree char *obj = tdx_props ?
        g_strconcat("tdx-guest,id=tdx0,", tdx_props, NULL) :
        g_strdup("tdx-guest,id=tdx0");
    const char *argv[] = {
        "timeout", "--kill-after=5", RUN_TIMEOUT, qtest_qemu_binary(NULL),
        "-accel", "kvm", "-machine", "q35,confidential-guest-support=tdx0",
        "-object", obj, "-cpu", "host", "-smp", "2", "-m", "1G",
        "-bios", image, "-nodefaults", "-display", "none", NULL,
    };
    g_auto(GStrv) envp = g_get_environ();
    g_autofree char *contents = NULL;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) all = NULL;
    int wstatus;

    g_test_message("launching a TD from %s on the TDX kernel-contract layer"
                   "%s%s", image, inject ? ", injecting " : "",
                   inject ? inject : "");
    envp = g_environ_setenv(envp, "LD_PRELOAD", TDX_CONTRACT_LIB, true);
    envp = g_environ_setenv(envp, "QKM_CONTRACT_LOG", log, true);
    if (inject) {
        envp = g_environ_setenv(envp, "QKM_TDX_INJECT", inject, true);
    } else {
        envp = g_environ_unsetenv(envp, "QKM_TDX_INJECT");
    }
    if (model_in_place) {
        envp = g_environ_setenv(envp, "QKM_TDX_IN_PLACE", "1", true);
    } else {
        envp = g_environ_unsetenv(envp, "QKM_TDX_IN_PLACE");
    }
    g_assert_true(g_spawn_sync(NULL, (char **)argv, envp, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, NULL, &r->err, &wstatus, NULL));
    r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    if (r->status) {
        g_test_message("QEMU exited with status %d: %s", r->status, r->err);
    }
    /* timeout(1) exits 124 (137 after SIGKILL): QEMU hung */
    g_assert_cmpint(r->status, !=, 124);
    g_assert_cmpint(r->status, !=, 137);

    if (g_file_get_contents(log, &contents, NULL, NULL)) {
        all = g_strsplit(contents, "\n", -1);
        for (char **l = all; *l; l++) {
            if (g_str_has_prefix(*l, "tdx ")) {
                g_ptr_array_add(lines, g_strdup(*l + 4));
            }
        }
    }
    g_ptr_array_add(lines, NULL);
    r->log = (char **)g_ptr_array_free(g_steal_pointer(&lines), false);
    unlink(log);
    rmdir(dir);
}

static unsigned count_prefix(char **log, const char *prefix)
{
    unsigned n = 0;

    for (; *log; log++) {
        n += g_str_has_prefix(*log, prefix);
    }
    return n;
}

static unsigned count_substr(const char *text, const char *needle)
{
    unsigned n = 0;

    for (const char *p = text; (p = strstr(p, needle)); p++) {
        n++;
    }
    return n;
}

/* --- TDVF images --- */

static uint32_t ld32(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static void st16(uint8_t *p, uint16_t v)
{
    p[0] = v;
    p[1] = v >> 8;
}

static void st32(uint8_t *p, uint32_t v)
{
    st16(p, v);
    st16(p + 2, v >> 16);
}

static void st64(uint8_t *p, uint64_t v)
{
    st32(p, v);
    st32(p + 4, v >> 32);
}

/* GUIDs in EFI byte order */
static const uint8_t footer_guid[16] = {
    0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45,
    0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d,
};
static const uint8_t tdx_guid[16] = {
    0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47,
    0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2,
};

/* The test's own reading of an image's TDVF sections. */
static GArray *parse_sections(const uint8_t *img, size_t size)
{
    GArray *secs = g_array_new(false, true, sizeof(Section));
    const uint8_t *end = img + size;
    const uint8_t *p = end - 48;
    unsigned total;

    g_assert_cmpmem(p, 16, footer_guid, 16);
    total = p[-2] | p[-1] << 8;
    p -= 2;
    for (const uint8_t *lim = p - (total - 18); p > lim;) {
        unsigned len = p[-18] | p[-17] << 8;

        if (!memcmp(p - 16, tdx_guid, 16)) {
            const uint8_t *md = end - ld32(p - 18 - 4);
            unsigned n = ld32(md + 12);

            g_assert_cmphex(ld32(md), ==, TDVF_SIGNATURE);
            for (unsigned i = 0; i < n; i++) {
                const uint8_t *e = md + 16 + 32 * i;
                Section s = {
                    ld32(e), ld32(e + 4), ld64(e + 8), ld64(e + 16),
                    ld32(e + 24), ld32(e + 28),
                };
                g_array_append_val(secs, s);
            }
            return secs;
        }
        p -= len;
    }
    g_assert_not_reached();
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

#define SYN_SIZE    0x100000        /* 1 MiB */
#define SYN_BFV_OFF 0x80000
#define SYN_MD_OFF  0x40000

/*
 * A synthetic TDVF: CFV at image 0 (GPA 4G-1M, 256 KiB), metadata at
 * 0x40000, BFV at image 0x80000 (GPA 4G-512K, 512 KiB, measured), a
 * TD_HOB and a TEMP_MEM in low RAM.  @edit may break it.
 */
static char *synthetic_image(void (*edit)(uint8_t *img, uint8_t *md))
{
    g_autofree uint8_t *img = g_malloc0(SYN_SIZE);
    uint8_t *md = img + SYN_MD_OFF, *e, *t;
    const Section secs[] = {
        { SYN_BFV_OFF, 0x80000, 0x100000000ULL - 0x80000, 0x80000, SEC_BFV,
          MR_EXTEND },
        { 0, 0x40000, 0x100000000ULL - SYN_SIZE, 0x40000, SEC_CFV, 0 },
        { 0, 0, 0x800000, 0x2000, SEC_TD_HOB, 0 },
        { 0, 0, 0x900000, 0x10000, SEC_TEMP_MEM, 0 },
    };
    char *path;
    int fd;

    for (size_t i = 0; i < SYN_SIZE; i += 4) {
        st32(img + i, 0x9e3779b9u * (uint32_t)(i / 4 + 1));
    }
    memset(md, 0, 16 + 32 * G_N_ELEMENTS(secs));
    st32(md, TDVF_SIGNATURE);
    st32(md + 4, 16 + 32 * G_N_ELEMENTS(secs));
    st32(md + 8, 1);
    st32(md + 12, G_N_ELEMENTS(secs));
    for (size_t i = 0; i < G_N_ELEMENTS(secs); i++) {
        e = md + 16 + 32 * i;
        st32(e, secs[i].data_offset);
        st32(e + 4, secs[i].raw_size);
        st64(e + 8, secs[i].address);
        st64(e + 16, secs[i].size);
        st32(e + 24, secs[i].type);
        st32(e + 28, secs[i].attributes);
    }
    /* OVMF table: [offset u32][len u16 = 22][TDX GUID] [total u16][footer] */
    t = img + SYN_SIZE - 48;
    memcpy(t, footer_guid, 16);
    st16(t - 2, 22 + 18);
    memcpy(t - 2 - 16, tdx_guid, 16);
    st16(t - 2 - 18, 22);
    st32(t - 2 - 22, SYN_SIZE - SYN_MD_OFF);
    if (edit) {
        edit(img, md);
    }

    fd = g_file_open_tmp("tdvf-XXXXXX.fd", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, img, SYN_SIZE), ==, SYN_SIZE);
    close(fd);
    return path;
}

/*
 * The whole launch: capabilities, INIT_VM, then per vCPU GET_CPUID and
 * INIT_VCPU with the TD_HOB's GPA, one INIT_MEM_REGION per section in
 * metadata order with its flags, region and data, FINALIZE_VM.
 */
static void check_launch(const char *image)
{
    g_auto(Run) r = { 0 };
    g_autofree uint8_t *img = NULL;
    g_autoptr(GArray) secs = NULL;
    uint64_t hob = 0, added = 0, measured = 0;
    size_t size;
    char **l;

    g_assert_true(g_file_get_contents(image, (char **)&img, &size, NULL));
    secs = parse_sections(img, size);
    launch(&r, image, NULL, NULL);
    g_assert_cmpint(r.status, ==, 0);

    l = r.log;
    g_assert_cmpstr(*l++, ==, "CREATE_VM type 5 as a default VM");
    while (*l && !strcmp(*l, "CAPABILITIES -> -7")) {
        l++;    /* -E2BIG until QEMU's buffer holds the CPUID list */
    }
    g_assert_cmpstr(*l++, ==, "CAPABILITIES -> 0");
    g_assert_cmpstr(*l++, ==, "INIT_VM -> 0");
    for (unsigned i = 0; i < secs->len; i++) {
        Section *s = &g_array_index(secs, Section, i);

        if (s->type == SEC_TD_HOB && !hob) {
            hob = s->address;
        }
    }
    for (int cpu = 0; cpu < 2; cpu++) {
        g_autofree char *want = g_strdup_printf("GET_CPUID vcpu %d nent 100 "
                                                "-> 0", cpu);

        g_assert_true(g_str_has_prefix(*l, want));
        l++;
    }
    for (int cpu = 0; cpu < 2; cpu++) {
        g_autofree char *want = g_strdup_printf("INIT_VCPU vcpu %d hob "
                                                "0x%" PRIx64 " -> 0",
                                                cpu, hob);
        g_assert_cmpstr(*l++, ==, want);
    }
    for (unsigned i = 0; i < secs->len; i++) {
        Section *s = &g_array_index(secs, Section, i);
        uint64_t pages = s->size / 4096;
        g_autofree uint8_t *zero = g_malloc0(s->size);
        g_autofree char *want = g_strdup_printf(
            "INIT_MEM_REGION vcpu 0 flags 0x%x gpa 0x%" PRIx64 " pages %"
            PRIu64 " -> 0 gpa 0x%" PRIx64 " pages 0 source+0x%" PRIx64
            " fnv 0x%016" PRIx64, s->attributes & MR_EXTEND, s->address,
            pages, s->address + s->size, s->size,
            fnv(s->type <= SEC_CFV ? img + s->data_offset : zero, s->size));

        g_assert_nonnull(*l);
        if (s->type == SEC_TD_HOB) {
            /* QEMU writes the HOB: compare up to the data. */
            *strstr(want, " fnv") = 0;
            g_assert_true(g_str_has_prefix(*l, want));
        } else {
            g_assert_cmpstr(*l, ==, want);
        }
        l++;
        added += pages;
        measured += s->attributes & MR_EXTEND ? pages : 0;
    }
    {
        g_autofree char *want = g_strdup_printf("FINALIZE_VM -> 0 added %"
                                                PRIu64 " measured %" PRIu64,
                                                added, measured);
        g_assert_cmpstr(*l++, ==, want);
    }
    g_assert_cmpstr(*l++, ==, "KVM_RUN after FINALIZE: shutdown");
    g_assert_null(*l);
    g_assert_null(strstr(r.err, "TDX launch failed"));
}

static void test_launch_ovmf(void)
{
    g_autofree char *why = NULL;
    g_autofree char *ovmf = NULL;

    if (!contract_usable()) {
        return;
    }
    ovmf = find_ovmf(&why);
    if (!ovmf) {
        g_test_skip(why);
        return;
    }
    check_launch(ovmf);
}

static void test_launch_synthetic(void)
{
    g_autofree char *image = NULL;

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    check_launch(image);
    unlink(image);
}

/* -EINTR halfway through the BFV: the next call resumes at the half. */
static void test_eintr_resume(void)
{
    g_autofree char *image = NULL;
    g_auto(Run) r = { 0 };

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    launch(&r, image, "eintr-mid", NULL);
    unlink(image);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION vcpu 0 flags 0x1 "
                                  "gpa 0xfff80000 pages 128 -> -4 gpa "
                                  "0xfffc0000 pages 64 source+0x40000"),
                     ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION vcpu 0 flags 0x1 "
                                  "gpa 0xfffc0000 pages 64 -> 0 gpa "
                                  "0x100000000 pages 0 source+0x40000"),
                     ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION"), ==, 5);
    g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM -> 0 added 210 "
                                  "measured 128"), ==, 1);
}

static void test_ebusy_retry(void)
{
    g_autofree char *image = NULL;
    g_auto(Run) r = { 0 };

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    launch(&r, image, "ebusy=3", NULL);
    unlink(image);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION vcpu 0 flags 0x1 "
                                  "gpa 0xfff80000 pages 128 -> -16 gpa "
                                  "0xfff80000 pages 128 source+0x0"), ==, 3);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION"), ==, 4 + 3);
    g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM -> 0"), ==, 1);
}

#define BFV_DESC "TDVF section BFV (GPA 0xfff80000-0xffffffff, 128 pages, " \
                 "measured, flags 0x1)"

/* No progress, ever: a bounded number of retries, one clear error. */
static void test_no_progress(void)
{
    g_autofree char *image = NULL;
    g_auto(Run) r = { 0 };

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    launch(&r, image, "eagain-forever", NULL);
    unlink(image);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION"), ==, 101);
    g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM"), ==, 0);
    g_assert_cmpuint(count_substr(r.err, "TDX launch failed"), ==, 1);
    g_assert_nonnull(strstr(r.err, "TDX launch failed: cannot populate "
                            BFV_DESC ": KVM_TDX_INIT_MEM_REGION made no "
                            "progress in 100 retries (last: Resource "
                            "temporarily unavailable) with 0 of 128 pages "
                            "done"));
}

/* Each non-retryable error: reported once, with what a user needs. */
typedef struct PopulateError {
    const char *inject, *text;
} PopulateError;

static const PopulateError populate_errors[] = {
    { "eio", "Input/output error (the TDX VM is dead" },
    { "eperm", "Operation not permitted (a page of the range is "
               "write-tracked by KVM" },
    { "efault", "Bad address (KVM could not read the source pages" },
    { "enomem", "Cannot allocate memory (the host is out of memory" },
    { "einval", "Invalid argument (KVM refused the range: it must be "
                "private guest_memfd memory" },
};

static void test_error(const void *data)
{
    const PopulateError *c = data;
    g_autofree char *image = NULL;
    g_autofree char *want = g_strdup_printf(
        "TDX launch failed: KVM_TDX_INIT_MEM_REGION failed for " BFV_DESC
        " after 1 of 128 pages (127 remaining): %s", c->text);
    g_auto(Run) r = { 0 };

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    launch(&r, image, c->inject, NULL);
    unlink(image);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION"), ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM"), ==, 0);
    g_assert_cmpuint(count_substr(r.err, "TDX launch failed"), ==, 1);
    if (!strstr(r.err, want)) {
        g_test_message("stderr: %s", r.err);
    }
    g_assert_nonnull(strstr(r.err, want));
}

/*
 * KVM_TDX_GET_CPUID -E2BIG with the needed nent (the documented
 * contract): QEMU retries with a larger buffer until the list fits (since
 * f093ee7ac3 it doubles the size).  QEMU 10.2.2 read nent from the buffer
 * it had just freed.
 */
static void test_get_cpuid_e2big(void)
{
    g_autofree char *image = NULL;
    g_auto(Run) r = { 0 };
    unsigned asked, got, tries = 0, done = 0;

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    launch(&r, image, "get-cpuid-nent=120", NULL);
    unlink(image);
    g_assert_cmpint(r.status, ==, 0);
    for (char **l = r.log; *l; l++) {
        if (sscanf(*l, "GET_CPUID vcpu 0 nent %u -> -7 nent %u",
                   &asked, &got) == 2) {
            g_assert_cmpuint(asked, <, 120);
            g_assert_cmpuint(got, ==, 120);
            g_assert_cmpuint(done, ==, 0);
            tries++;
        } else if (sscanf(*l, "GET_CPUID vcpu 0 nent %u -> 0 nent %u",
                          &asked, &got) == 2) {
            g_assert_cmpuint(asked, >=, 120);
            g_assert_cmpuint(got, ==, 120);
            done++;
        }
    }
    /* 100 entries refused, then a larger buffer (200 upstream) taken. */
    g_assert_cmpuint(tries, >=, 1);
    g_assert_cmpuint(done, ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM -> 0"), ==, 1);
}

/* --- malformed TDVF metadata: a clear error, nothing populated --- */

static void edit_overlap(uint8_t *img, uint8_t *md)
{
    st64(md + 16 + 32 * 3 + 8, 0x801000);   /* TEMP_MEM into TD_HOB */
}

static void edit_unaligned(uint8_t *img, uint8_t *md)
{
    st32(md + 16, SYN_BFV_OFF + 0x800);     /* BFV DataOffset */
}

static void edit_overflow(uint8_t *img, uint8_t *md)
{
    st64(md + 16 + 32 * 3 + 8, 0xfffffffffffff000ULL);
}

static void edit_outside_image(uint8_t *img, uint8_t *md)
{
    st32(md + 16 + 32, 0xf0000);            /* CFV data past the end */
}

static void edit_truncated(uint8_t *img, uint8_t *md)
{
    st32(img + SYN_SIZE - 48 - 2 - 22, SYN_SIZE + 0x1000);
}

static void edit_length(uint8_t *img, uint8_t *md)
{
    st32(md + 12, 9);                       /* 9 sections, room for 4 */
}

typedef struct BadTdvf {
    const char *name;
    void (*edit)(uint8_t *img, uint8_t *md);
    const char *text;
} BadTdvf;

static const BadTdvf bad_tdvfs[] = {
    { "overlap", edit_overlap, "TDVF: sections 2 (TD_HOB, GPA "
      "0x800000+0x2000) and 3 (TEMP_MEM, GPA 0x801000+0x10000) overlap" },
    { "unaligned", edit_unaligned, "TDVF: section 0 (BFV): DataOffset "
      "0x80800 is not 4 KiB-aligned" },
    { "overflow", edit_overflow, "TDVF: section 3 (TEMP_MEM): MemoryAddress "
      "0xfffffffffffff000 + MemoryDataSize 0x10000 overflows" },
    { "outside-image", edit_outside_image, "TDVF: section 1 (CFV): "
      "DataOffset 0xf0000 + MemoryDataSize 0x40000 is outside the "
      "0x100000-byte image" },
    { "truncated", edit_truncated, "TDVF: the metadata offset 0x101000 "
      "(from the end) is outside the 0x100000-byte image" },
    { "length", edit_length, "TDVF: metadata length 0x90 does not match its "
      "9 sections (expected 0x130)" },
};

static void test_bad_tdvf(const void *data)
{
    const BadTdvf *c = data;
    g_autofree char *image = NULL;
    g_auto(Run) r = { 0 };

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(c->edit);
    launch(&r, image, NULL, NULL);
    unlink(image);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION"), ==, 0);
    if (!strstr(r.err, c->text)) {
        g_test_message("stderr: %s", r.err);
    }
    g_assert_nonnull(strstr(r.err, c->text));
}

/*
 * populate-in-place=on where it cannot be had (headers or kernel without
 * in-place conversion): a start-up error that says which; off copies.
 */
static void test_in_place_on_unavailable(void)
{
    g_autofree char *image = NULL;
    g_auto(Run) r = { 0 };

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    launch(&r, image, NULL, "populate-in-place=on");
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.err, "tdx-guest populate-in-place=on is not "
                            "possible: "));
    g_assert_true(strstr(r.err, "this QEMU was built with Linux headers "
                         "that lack in-place conversion") ||
                  strstr(r.err, "KVM has no in-place conversion of "
                         "guest_memfd (KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES "
                         "lacks KVM_MEMORY_ATTRIBUTE_PRIVATE)"));
    g_assert_cmpuint(count_prefix(r.log, "INIT_MEM_REGION"), ==, 0);
    run_free(&r);
    memset(&r, 0, sizeof(r));

    launch(&r, image, NULL, "populate-in-place=off");
    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM -> 0"), ==, 1);
    unlink(image);
}

/*
 * In place, on the layer's model of an in-place kernel: each section is
 * written into the guest_memfd, converted with KVM_SET_MEMORY_ATTRIBUTES2
 * and populated with source_addr 0 (not advanced); the data the kernel
 * takes from the guest_memfd is the image's.  'auto' does the same,
 * 'off' copies.  Needs a QEMU built with the in-place UAPI: make check
 * runs this case again with build/qemu-inplace.
 */
static void test_in_place_launch(void)
{
    static const char *const props[] = {
        "populate-in-place=on", "populate-in-place=auto",
        "populate-in-place=off",
    };
    g_autofree char *image = NULL;
    g_autofree uint8_t *img = NULL;
    g_autoptr(GArray) secs = NULL;
    size_t size;

    if (!contract_usable()) {
        return;
    }
    image = synthetic_image(NULL);
    g_assert_true(g_file_get_contents(image, (char **)&img, &size, NULL));
    secs = parse_sections(img, size);
    model_in_place = true;
    for (size_t p = 0; p < G_N_ELEMENTS(props); p++) {
        bool copy = p == 2;
        g_auto(Run) r = { 0 };

        launch(&r, image, NULL, props[p]);
        if (r.status && strstr(r.err, "built with Linux headers that lack")) {
            /* make check sets this for the in-place build */
            g_assert_null(g_getenv("QKM_REQUIRE_IN_PLACE"));
            model_in_place = false;
            unlink(image);
            g_test_skip("this QEMU was built without the in-place UAPI; "
                        "make check runs this case with the in-place build "
                        "(scripts/build.sh inplace)");
            return;
        }
        g_test_message("%s", props[p]);
        g_assert_cmpint(r.status, ==, 0);
        if (copy) {
            g_assert_cmpuint(count_prefix(r.log, "SET_MEMORY_ATTRIBUTES2"),
                             ==, 0);
        } else {
            /* the memslots at map time, then one per section */
            g_assert_cmpuint(count_prefix(r.log, "SET_MEMORY_ATTRIBUTES2"),
                             >=, secs->len);
        }
        for (unsigned i = 0; i < secs->len; i++) {
            Section *s = &g_array_index(secs, Section, i);
            g_autofree char *want = g_strdup_printf(
                "INIT_MEM_REGION vcpu 0 flags 0x%x gpa 0x%" PRIx64 " pages %"
                PRIu64 " -> 0 gpa 0x%" PRIx64 " pages 0 source+0x%" PRIx64
                " fnv 0x%016" PRIx64, s->attributes & MR_EXTEND, s->address,
                s->size / 4096, s->address + s->size, copy ? s->size : 0,
                s->type <= SEC_CFV ? fnv(img + s->data_offset, s->size) : 0);

            if (s->type > SEC_CFV) {
                *strstr(want, " fnv") = 0;
            }
            g_assert_cmpuint(count_prefix(r.log, want), ==, 1);
        }
        g_assert_cmpuint(count_prefix(r.log, "FINALIZE_VM -> 0"), ==, 1);
    }
    model_in_place = false;
    unlink(image);
}

/* A host with TDX: launch on the real kernel, stopped before it runs. */
static void test_real_tdx(void)
{
    g_autofree char *why = NULL;
    g_autofree char *ovmf = NULL;
    QTestState *qts;
    QDict *rsp;

    if (!kvm_usable() || !real_tdx()) {
        g_test_skip("no KVM_X86_TDX_VM on this host: the contract cases "
                    "stand in for it");
        return;
    }
    ovmf = find_ovmf(&why);
    if (!ovmf) {
        g_test_skip(why);
        return;
    }
    g_test_message("running on the real KVM_X86_TDX_VM");
    qts = qtest_initf("-accel kvm -machine q35,confidential-guest-support="
                      "tdx0 -object tdx-guest,id=tdx0 -cpu host -m 1G -S "
                      "-bios %s -nodefaults -display none", ovmf);
    /* machine-init-done has run: the TD is populated and finalized */
    rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "prelaunch");
    qobject_unref(rsp);
    qtest_quit(qts);
}

/*
 * "-accel kvm -accel tcg" on a host without KVM (its device node
 * missing): QEMU falls back to TCG, which says it cannot run a TD.
 */
static void test_fallback(void)
{
    g_autofree char *cmd = g_strdup_printf(
        "%s -accel kvm,device=/nonexistent/kvm -accel tcg "
        "-machine q35,confidential-guest-support=tdx0 "
        "-object tdx-guest,id=tdx0,populate-in-place=on -m 1G -nodefaults "
        "-display none -S", qtest_qemu_binary(NULL));
    static const char *const lines[] = {
        "failed to initialize kvm: No such file or directory\n",
        "falling back to tcg\n",
        "cannot set up private guest memory for tdx-guest: KVM required\n",
    };
    g_autofree char *out = NULL, *err = NULL;
    const char *at;
    int status;

    if (!qtest_has_accel("tcg")) {
        g_test_skip("this QEMU has no TCG");
        return;
    }
    g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, NULL));
    g_test_message("%s", err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    at = err;
    for (int i = 0; i < ARRAY_SIZE(lines); i++) {
        at = strstr(at, lines[i]);
        g_assert_nonnull(at);
    }
}

/*
 * populate-in-place is a class property with a description: qom-list-
 * properties gives it, and -object tdx-guest,help lists it (it used to
 * say "There are no options for tdx-guest").
 */
static void test_populate_in_place_property(void)
{
    g_autofree char *cmd = g_strdup_printf("%s -object tdx-guest,help",
                                           qtest_qemu_binary(NULL));
    g_autofree char *help = NULL;
    g_autofree char *line = NULL;
    const char *desc = NULL;
    QTestState *qts;
    QListEntry *e;
    QDict *rsp;
    int status;

    qts = qtest_init("-machine none");
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-properties', "
                    "'arguments': { 'typename': 'tdx-guest' } }");
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *prop = qobject_to(QDict, qlist_entry_obj(e));

        if (g_str_equal(qdict_get_str(prop, "name"), "populate-in-place")) {
            desc = qdict_get_try_str(prop, "description");
            line = g_strdup_printf("  populate-in-place=<OnOffAuto> - %s",
                                   desc ? desc : "");
        }
    }
    g_assert_nonnull(desc);
    g_assert_nonnull(strstr(desc, "'auto'"));
    qobject_unref(rsp);
    qtest_quit(qts);

    g_assert_true(g_spawn_command_line_sync(cmd, &help, NULL, &status, NULL));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_assert_null(strstr(help, "There are no options"));
    g_assert_nonnull(strstr(help, line));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/x86/tdx/populate-in-place-property",
                   test_populate_in_place_property);
    qtest_add_func("/x86/tdx/fallback", test_fallback);
    qtest_add_func("/x86/tdx/contract/launch/ovmf", test_launch_ovmf);
    qtest_add_func("/x86/tdx/contract/launch/synthetic",
                   test_launch_synthetic);
    qtest_add_func("/x86/tdx/contract/populate/eintr-resume",
                   test_eintr_resume);
    qtest_add_func("/x86/tdx/contract/populate/ebusy-retry",
                   test_ebusy_retry);
    qtest_add_func("/x86/tdx/contract/populate/no-progress",
                   test_no_progress);
    for (size_t i = 0; i < G_N_ELEMENTS(populate_errors); i++) {
        g_autofree char *path = g_strdup_printf(
            "/x86/tdx/contract/populate/errors/%s", populate_errors[i].inject);

        qtest_add_data_func(path, &populate_errors[i], test_error);
    }
    qtest_add_func("/x86/tdx/contract/get-cpuid-e2big",
                   test_get_cpuid_e2big);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_tdvfs); i++) {
        g_autofree char *path = g_strdup_printf("/x86/tdx/contract/bad-tdvf/%s",
                                                bad_tdvfs[i].name);

        qtest_add_data_func(path, &bad_tdvfs[i], test_bad_tdvf);
    }
    qtest_add_func("/x86/tdx/contract/in-place/on-unavailable",
                   test_in_place_on_unavailable);
    qtest_add_func("/x86/tdx/contract/in-place/launch", test_in_place_launch);
    qtest_add_func("/x86/tdx/real-tdx", test_real_tdx);
    return g_test_run();
}
