/* Fuzzes the Linux boot-protocol loader (vmm/loaders/linux_boot.c).
 *
 * Input: byte 0 picks the RAM size (ram_sizes[byte0 % N]), byte 1 the initrd's share of
 * the rest (byte1 * rest / 256 bytes from the end), byte 2 the command line's length n
 * (0xff: none), the next n bytes are the command line (NUL-terminated here), the rest is
 * the image followed by the initrd. A bzImage needs its header at 0x1f1-0x26c, so short
 * inputs are grown: when byte 3 is 'H' a plausible header (0xAA55, HdrS, 2.15) is laid
 * under the input's own bytes from 0x1f0 on, so mutations reach the checks past the magic.
 *
 * Guest RAM is a malloc'd block of exactly its size: ASan catches a write outside it. A
 * failed load must leave RAM untouched (it is filled with 0xAA first); a good one must
 * give an entry inside the loaded kernel, a zero page, GDT and command line inside RAM,
 * an initrd inside RAM and above the kernel, and an e820 map ending at the end of RAM.
 * SOURCES: vmm/loaders/linux_boot.c vmm/lib/printf.c vmm/lib/string.c tests/fuzz/console_sink.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/console_sink.h"
#include "vmm/loaders/linux_boot.h"

static const uint64_t ram_sizes[] = {0x1000, 0x100000, 0x101000, 0x400000, 0x800000, 0x1000000, 0x1400000};
#define POISON 0xaa
#define HEADER_GROW 0x8000 /* a grown image: the header template, then the input */

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    sink_reset();
    uint64_t ram_size = ram_sizes[data[0] % (sizeof ram_sizes / sizeof ram_sizes[0])];
    unsigned share = data[1], n = data[2];
    bool grow = data[3] == 'H';
    data += 4;
    size -= 4;
    char cmdline[256];
    const char *cmd = NULL;
    if (n != 0xff) {
        if (n > size)
            n = (unsigned)size;
        memcpy(cmdline, data, n);
        cmdline[n] = 0;
        cmd = cmdline;
        data += n;
        size -= n;
    }
    size_t initrd_size = size * share / 256;
    size_t image_size = size - initrd_size;
    uint8_t *image;
    if (grow) {
        image = calloc(1, HEADER_GROW + image_size);
        image[LH_SETUP_SECTS] = 27;
        image[LH_BOOT_FLAG] = 0x55;
        image[LH_BOOT_FLAG + 1] = 0xaa;
        image[LH_JUMP] = 0xeb;
        image[LH_JUMP + 1] = 0x6a;
        memcpy(image + LH_HEADER, "HdrS\x0f\x02", 6);
        image[LH_LOADFLAGS] = 1;
        memcpy(image + 0x1f0, data, image_size < HEADER_GROW - 0x1f0 ? image_size : HEADER_GROW - 0x1f0);
        if (image_size > HEADER_GROW - 0x1f0)
            memcpy(image + HEADER_GROW, data + (HEADER_GROW - 0x1f0), image_size - (HEADER_GROW - 0x1f0));
        image_size += 0x1f0 + (image_size > HEADER_GROW - 0x1f0 ? 0 : HEADER_GROW - 0x1f0 - image_size);
    } else {
        image = malloc(image_size ? image_size : 1);
        memcpy(image, data, image_size);
    }
    uint8_t *initrd = malloc(initrd_size ? initrd_size : 1);
    memcpy(initrd, data + (size - initrd_size), initrd_size);

    struct guest_ram ram = {malloc(ram_size), ram_size, 0};
    memset(ram.hva, POISON, ram_size);
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    int rc = guest_load_linux(&ram, image, image_size, initrd_size ? initrd : NULL, initrd_size, cmd, &b, err);
    FUZZ_CHECK(strlen(err) < GUEST_ERR_LEN, "error message too long");
    if (rc) {
        FUZZ_CHECK(err[0], "failure %d without a reason", rc);
        static uint8_t poison[1 << 16];
        if (!poison[0])
            memset(poison, POISON, sizeof poison);
        for (uint64_t at = 0; at < ram_size; at += sizeof poison) {
            uint64_t len = ram_size - at < sizeof poison ? ram_size - at : sizeof poison;
            FUZZ_CHECK(memcmp(ram.hva + at, poison, len) == 0, "failed load (%d: %s) wrote guest RAM near 0x%lx", rc,
                       err, (unsigned long)at);
        }
    } else {
        FUZZ_CHECK(b.load_lo >= LINUX_LOW_LOAD && b.load_hi <= ram_size && b.load_lo < b.load_hi, "kernel span 0x%lx-0x%lx",
                   (unsigned long)b.load_lo, (unsigned long)b.load_hi);
        FUZZ_CHECK(b.rip >= b.load_lo && b.rip < b.load_hi, "entry 0x%lx outside the kernel", (unsigned long)b.rip);
        FUZZ_CHECK(b.rsi == LINUX_ZERO_PAGE && LINUX_CMDLINE + LINUX_CMDLINE_AREA <= ram_size, "boot data outside RAM");
        if (initrd_size)
            FUZZ_CHECK(b.initrd >= b.load_hi && b.initrd + initrd_size <= ram_size &&
                           memcmp(ram.hva + b.initrd, initrd, initrd_size) == 0,
                       "initrd at 0x%lx", (unsigned long)b.initrd);
        const uint8_t *zp = ram.hva + LINUX_ZERO_PAGE;
        unsigned entries = zp[BP_E820_ENTRIES];
        FUZZ_CHECK(entries >= 1 && entries <= BP_E820_MAX, "e820 entries %u", entries);
        const uint8_t *last = zp + BP_E820_TABLE + (entries - 1) * BP_E820_ENTRY_SIZE;
        FUZZ_CHECK(rd64(last) + rd64(last + 8) == ram_size, "e820 map ends at 0x%lx", (unsigned long)(rd64(last) + rd64(last + 8)));
        FUZZ_CHECK(rd32(zp + LH_CMD_LINE_PTR) == LINUX_CMDLINE, "cmd_line_ptr");
        FUZZ_CHECK(!cmd || strcmp((const char *)ram.hva + LINUX_CMDLINE, cmd) == 0, "command line");
    }
    free(ram.hva);
    free(initrd);
    free(image);
    return 0;
}
