#ifndef SMARTHOST_SHIM_LINUX_H
#define SMARTHOST_SHIM_LINUX_H
/* The Linux and glibc interfaces Swift's Glibc module leaves out. Headers its module map
   does not cover come in whole (Swift then calls epoll, eventfd, signalfd, fgetxattr and
   reads prctl's constants directly); what glibc hides behind _GNU_SOURCE, and prctl, which
   is variadic, get one-line wrappers named after the original. No logic lives here: EINTR
   retries, signal masks and thread-name limits are Swift's (System/, Reactor/). */
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/xattr.h>
#include <sys/prctl.h>

int shim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int shim_pthread_setname_np(pthread_t thread, const char *name);
int shim_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
int shim_prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);

/* Constants defined only under _GNU_SOURCE. */
extern const unsigned int SHIM_RENAME_NOREPLACE;
extern const int SHIM_F_OFD_SETLK;

/* The CPU's crc32 instruction (SSE4.2), which Swift has no intrinsic for. The loop stays
   here because a call per 8-byte word from Swift costs most of the speed; the table
   version, the choice between them and the checksum's contract are `SpoolCRC32C`'s. */
int shim_cpu_supports_sse42(void);
uint32_t shim_crc32c_sse42_update(uint32_t state, const uint8_t *bytes, size_t count);
#endif
