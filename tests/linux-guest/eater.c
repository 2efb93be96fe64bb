/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Runs in the Linux guest of test-memory-error.py, as root (static).
 * Fills anonymous memory, one MiB at a time, until it holds the top
 * page of the first pc-dimm (the first "System RAM" of /proc/iomem
 * above 4 GiB, movable memory, which the kernel fills from the bottom)
 * and a run of at least MIN_RUN bytes below it that is all its own
 * (/proc/self/pagemap), and prints that run:
 *
 *   EATER run 0x<first byte> 0x<end byte>
 *   EATER ready
 *
 * The test cuts the backing of guest RAM inside that run only, so that
 * nothing but this process loses memory, and tells init through the
 * FIFO /ready (init forks nothing until then, so that nothing else takes
 * pages among the process's).  Then it reads its memory over and over,
 * until the guest's kernel kills it for the lost page.
 *
 *   eater MAX_MIB MIN_RUN_KIB
 */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define CHUNK (1UL << 20)

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * The end of the first System RAM range at or above 4 GiB, from
 * /proc/iomem: the first pc-dimm.
 */
static uint64_t dimm_end(void)
{
    FILE *f = fopen("/proc/iomem", "r");
    char line[256];
    uint64_t end = 0, start = UINT64_MAX;

    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long a, b;

        if (line[0] != ' ' && strstr(line, "System RAM") &&
            sscanf(line, "%llx-%llx", &a, &b) == 2 &&
            a >= (4ULL << 30) && a < start) {
            start = a;
            end = b + 1;
        }
    }
    if (f) {
        fclose(f);
    }
    return end;
}

int main(int argc, char **argv)
{
    size_t max = strtoul(argv[1], NULL, 0) << 20;
    uint64_t min_run = strtoull(argv[2], NULL, 0) << 10;
    uint64_t end = dimm_end();
    size_t pages = max / PAGE, got = 0;
    unsigned char **chunk = calloc(max / CHUNK, sizeof(*chunk));
    uint64_t *pfn = calloc(pages, sizeof(*pfn)), *sorted;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    size_t nchunks = 0, hi, lo = 0;
    unsigned long sum = 0;
    int found = 0;
    FILE *ready;

    sorted = calloc(pages, sizeof(*sorted));
    if (!end || !chunk || !pfn || !sorted || fd < 0) {
        printf("EATER failed to set up\n");
        return 1;
    }
    /* Its own bookkeeping first, so that it does not land among the run. */
    memset(pfn, 0xff, pages * sizeof(*pfn));
    memset(sorted, 0xff, pages * sizeof(*sorted));
    while (!found && nchunks < max / CHUNK) {
        unsigned char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED) {
            break;
        }
        chunk[nchunks++] = p;
        for (size_t i = 0; i < CHUNK / PAGE; i++) {
            uint64_t e;

            p[i * PAGE] = (unsigned char)i | 1;
            if (pread(fd, &e, sizeof(e),
                      ((uintptr_t)p / PAGE + i) * sizeof(e)) == sizeof(e) &&
                (e & (1ULL << 63))) {
                pfn[got++] = e & ((1ULL << 55) - 1);
            }
        }
        memcpy(sorted, pfn, got * sizeof(*pfn));
        qsort(sorted, got, sizeof(*sorted), cmp);
        /* Its highest page in the DIMM (it may have some above it). */
        for (hi = got; hi > 0 && sorted[hi - 1] >= end / PAGE; hi--) {
            continue;
        }
        if (hi == 0 || (sorted[--hi] + 1) * PAGE != end) {
            continue;
        }
        lo = hi;
        while (lo > 0 && sorted[lo - 1] == sorted[lo] - 1) {
            lo--;
        }
        found = (hi - lo + 1) * PAGE >= min_run;
    }
    if (!found) {
        printf("EATER could not hold the top of the DIMM (0x%llx) in %zu "
               "MiB\n",
               (unsigned long long)end, nchunks);
        return 1;
    }
    printf("EATER run 0x%llx 0x%llx\n",
           (unsigned long long)(sorted[lo] * PAGE),
           (unsigned long long)((sorted[hi] + 1) * PAGE));
    printf("EATER ready\n");
    fflush(stdout);
    ready = fopen("/ready", "w");
    if (ready) {
        fputs("ready\n", ready);
        fclose(ready);
    }
    for (;;) {
        for (size_t c = 0; c < nchunks; c++) {
            for (size_t i = 0; i < CHUNK / PAGE; i++) {
                sum += ((volatile unsigned char *)chunk[c])[i * PAGE];
            }
        }
        usleep(100 * 1000);
    }
    return sum == 0;
}
