/*
 * Fuzz harness for QEMU's TDVF metadata parser (hw/i386/tdvf.c) and the
 * OVMF table parser it relies on (hw/i386/pc_sysfw_ovmf.c)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Built by bench/fuzz/run.sh with QEMU's own compile flags for those
 * files plus AddressSanitizer and UBSan.  LLVMFuzzerTestOneInput() takes
 * one firmware image; without libFuzzer, main() is a small mutation
 * fuzzer seeded with Debian's OVMF.fd and a generated TDVF image, which
 * mutates the OVMF table and the TDVF metadata (bytes, and fields set to
 * boundary values) for a given time, then prints executions and images
 * accepted.  A sanitizer report aborts; the input that caused it is then
 * written to the crash file given as second argument.
 */

#include "../../build/qemu-src/hw/i386/pc_sysfw_ovmf.c"
#include "hw/i386/tdvf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long accepted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TdxFirmware fw = { 0 };
    uint8_t *img;

    if (size < 64 || size > 4 * 1024 * 1024) {
        return 0;
    }
    /* QEMU parses the image in guest RAM: a private, writable copy */
    img = g_malloc(size);
    memcpy(img, data, size);

    ovmf_flash_parsed = false;
    if (ovmf_table) {
        g_free(ovmf_table - ovmf_table_len);
    }
    ovmf_table = NULL;
    ovmf_table_len = 0;
    pc_system_parse_ovmf_flash(img, size);
    if (tdvf_parse_metadata(&fw, img, size) == 0) {
        accepted++;
        /* What tdx_finalize_vm() then reads: every BFV/CFV byte. */
        for (uint32_t i = 0; i < fw.nr_entries; i++) {
            TdxFirmwareEntry *e = &fw.entries[i];
            volatile uint8_t sink;

            if (e->type <= TDVF_SECTION_TYPE_CFV) {
                sink = img[e->data_offset];
                sink = img[e->data_offset + e->size - 1];
                (void)sink;
            }
        }
        g_free(fw.entries);
    }
    g_free(img);
    return 0;
}

#ifndef QKM_LIBFUZZER
static const uint8_t footer_guid[16] = {
    0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45,
    0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d,
};
static const uint8_t tdx_guid[16] = {
    0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47,
    0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2,
};

/* A small valid TDVF (256 KiB): BFV, CFV, TD_HOB, TEMP_MEM. */
static uint8_t *synthetic(size_t *size)
{
    const size_t n = 0x40000;
    uint8_t *img = g_malloc0(n);
    uint8_t *md = img + 0x10000, *t = img + n - 48;
    const uint64_t top = 0x100000000ULL;
    const uint64_t secs[4][6] = {
        { 0x20000, 0x20000, top - 0x20000, 0x20000, 0, 1 },
        { 0, 0x10000, top - n, 0x10000, 1, 0 },
        { 0, 0, 0x800000, 0x2000, 2, 0 },
        { 0, 0, 0x900000, 0x10000, 3, 0 },
    };

    stl_le_p(md, 0x46564454);
    stl_le_p(md + 4, 16 + 32 * 4);
    stl_le_p(md + 8, 1);
    stl_le_p(md + 12, 4);
    for (int i = 0; i < 4; i++) {
        uint8_t *e = md + 16 + 32 * i;

        stl_le_p(e, secs[i][0]);
        stl_le_p(e + 4, secs[i][1]);
        stq_le_p(e + 8, secs[i][2]);
        stq_le_p(e + 16, secs[i][3]);
        stl_le_p(e + 24, secs[i][4]);
        stl_le_p(e + 28, secs[i][5]);
    }
    memcpy(t, footer_guid, 16);
    stw_le_p(t - 2, 40);
    memcpy(t - 18, tdx_guid, 16);
    stw_le_p(t - 20, 22);
    stl_le_p(t - 24, n - 0x10000);
    *size = n;
    return img;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Where the interesting bytes are: the table and the metadata. */
static void regions(const uint8_t *img, size_t size, size_t *md, size_t *tab)
{
    *tab = size - 256;
    *md = size - 4096;
    for (size_t p = size - 50; p > size - 1024 && p >= 22; p--) {
        if (!memcmp(img + p - 16, tdx_guid, 16)) {
            uint32_t off = ldl_le_p(img + p - 22);

            if (off <= size && off >= 16) {
                *md = size - off;
            }
            break;
        }
    }
}

static uint64_t boundary(size_t size)
{
    static const uint64_t v[] = {
        0, 1, 0xfff, 0x1000, 0x1001, 0x7fffffff, 0x80000000, 0xffffffff,
        0x100000000ULL, 0xfffffffffffff000ULL, 0xffffffffffffffffULL,
    };
    uint64_t x = v[rnd() % G_N_ELEMENTS(v)];

    switch (rnd() % 4) {
    case 0:
        return size + (rnd() % 3) - 1;
    case 1:
        return 0x100000000ULL - size + (rnd() % 2) * 0x1000;
    default:
        return x;
    }
}

static void mutate(uint8_t *img, size_t size)
{
    size_t md, tab;
    unsigned n = 1 + rnd() % 4;

    regions(img, size, &md, &tab);
    for (unsigned i = 0; i < n; i++) {
        size_t base = (rnd() & 1) ? md : tab;
        size_t span = base == md ? 16 + 32 * 8 : 256;
        size_t at = base + rnd() % span;

        if (at + 8 > size) {
            continue;
        }
        switch (rnd() % 4) {
        case 0:
            img[at] ^= 1 << (rnd() % 8);
            break;
        case 1:
            img[at] = rnd();
            break;
        case 2:
            stl_le_p(img + (at & ~3), boundary(size));
            break;
        default:
            stq_le_p(img + (at & ~7), boundary(size));
            break;
        }
    }
}

static const uint8_t *current;
static size_t current_size;
static const char *crash_path;

/* ASan/UBSan abort: leave the input that did it behind. */
static void on_crash(int sig)
{
    if (current) {
        int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            if (write(fd, current, current_size) < 0) {
                /* nothing more to do in a signal handler */
            }
            close(fd);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 60;  /* or --replay FILE */
    const char *crash = argc > 2 ? argv[2] : "tdvf-fuzz-crash.bin";
    uint8_t *seeds[2];
    size_t sizes[2];
    unsigned nseeds = 0;
    gint64 end = g_get_monotonic_time() + (gint64)(seconds * 1e6);
    unsigned long execs = 0;
    gchar *ovmf = NULL;
    gsize ovmf_len;

    if (argc == 3 && !strcmp(argv[1], "--replay")) {
        gchar *data;
        gsize len;

        if (!g_file_get_contents(argv[2], &data, &len, NULL)) {
            return 1;
        }
        LLVMFuzzerTestOneInput((uint8_t *)data, len);
        printf("tdvf fuzz: %s replayed, %s\n", argv[2],
               accepted ? "accepted" : "rejected");
        return 0;
    }
    /* The parsers report every rejection: keep stderr for crashes. */
    if (!getenv("TDVF_FUZZ_VERBOSE") && !freopen("/dev/null", "w", stderr)) {
        return 1;
    }
    crash_path = crash;
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    seeds[nseeds] = synthetic(&sizes[nseeds]);
    nseeds++;
    if (g_file_get_contents("/usr/share/ovmf/OVMF.fd", &ovmf, &ovmf_len,
                            NULL)) {
        seeds[nseeds] = (uint8_t *)ovmf;
        sizes[nseeds++] = ovmf_len;
    }
    for (unsigned i = 0; i < nseeds; i++) {
        LLVMFuzzerTestOneInput(seeds[i], sizes[i]);
    }
    if (accepted != nseeds) {
        printf("tdvf fuzz: a seed is rejected by the parser\n");
        return 1;
    }
    while (g_get_monotonic_time() < end) {
        unsigned s = rnd() % nseeds;
        g_autofree uint8_t *img = g_memdup2(seeds[s], sizes[s]);

        mutate(img, sizes[s]);
        current = img;
        current_size = sizes[s];
        LLVMFuzzerTestOneInput(img, sizes[s]);
        current = NULL;
        execs++;
    }
    printf("tdvf fuzz: %lu executions in %.0f s, %lu accepted, 0 crashes "
           "(ASan+UBSan; seeds: synthetic%s)\n", execs, seconds,
           accepted - nseeds, nseeds > 1 ? ", OVMF.fd" : "");
    return 0;
}
#endif
