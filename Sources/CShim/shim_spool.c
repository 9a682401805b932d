#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "shim_spool.h"

int shim_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

#include <string.h>

static uint32_t crc32c_table[256];

static void crc32c_init_table(void) {
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t crc = index;
        for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        crc32c_table[index] = crc;
    }
}

static uint32_t crc32c_software(uint32_t crc, const uint8_t *bytes, size_t count) {
    for (size_t index = 0; index < count; index++) {
        crc = crc32c_table[(crc ^ bytes[index]) & 0xFF] ^ (crc >> 8);
    }
    return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *bytes, size_t count) {
    uint64_t wide = crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = _mm_crc32_u64(wide, word);
        bytes += 8;
        count -= 8;
    }
    crc = (uint32_t)wide;
    while (count--) crc = _mm_crc32_u8(crc, *bytes++);
    return crc;
}
#endif

typedef uint32_t (*crc32c_function)(uint32_t, const uint8_t *, size_t);
static crc32c_function crc32c_chosen;

/* Picked before main(): no lock needed on the data path. */
__attribute__((constructor))
static void crc32c_choose(void) {
    crc32c_init_table();
    crc32c_chosen = crc32c_software;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) crc32c_chosen = crc32c_sse42;
#endif
}

uint32_t shim_crc32c_update(uint32_t state, const uint8_t *bytes, size_t count) {
    if (count == 0) return state;
    return crc32c_chosen(state, bytes, count);
}

/* For the test that both implementations agree (not in the header's contract). */
uint32_t shim_crc32c_software_update(uint32_t state, const uint8_t *bytes, size_t count) {
    return crc32c_software(state, bytes, count);
}

int shim_ofd_trylock(int fd) {
    struct flock lock;
    memset(&lock, 0, sizeof lock);
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    int result;
    do {
        result = fcntl(fd, F_OFD_SETLK, &lock);
    } while (result != 0 && errno == EINTR);
    return result;
}
