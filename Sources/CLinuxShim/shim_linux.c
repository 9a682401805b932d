#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include "shim_linux.h"

int shim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
int shim_pthread_setname_np(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }
int shim_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) { return renameat2(olddirfd, oldpath, newdirfd, newpath, flags); }
int shim_prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5) { return prctl(option, arg2, arg3, arg4, arg5); }

const unsigned int SHIM_RENAME_NOREPLACE = RENAME_NOREPLACE;
const int SHIM_F_OFD_SETLK = F_OFD_SETLK;

#if defined(__x86_64__)
#include <nmmintrin.h>

int shim_cpu_supports_sse42(void) { __builtin_cpu_init(); return __builtin_cpu_supports("sse4.2"); }

__attribute__((target("sse4.2")))
uint32_t shim_crc32c_sse42_update(uint32_t state, const uint8_t *bytes, size_t count) {
    uint64_t wide = state;
    for (; count >= 8; bytes += 8, count -= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = _mm_crc32_u64(wide, word);
    }
    uint32_t crc = (uint32_t)wide;
    while (count--) crc = _mm_crc32_u8(crc, *bytes++);
    return crc;
}
#else
int shim_cpu_supports_sse42(void) { return 0; }
uint32_t shim_crc32c_sse42_update(uint32_t state, const uint8_t *bytes, size_t count) { (void)bytes; (void)count; return state; }
#endif
