#ifndef SMARTHOST_SHIM_SPOOL_H
#define SMARTHOST_SHIM_SPOOL_H

/// renameat2(RENAME_NOREPLACE): one directory operation where link+unlink is two.
/// Returns 0, or -1 with errno (EINVAL/ENOSYS where the file system cannot).
int shim_rename_noreplace(const char *from, const char *to);

#include <stddef.h>
#include <stdint.h>
/* fgetxattr(2), which Glibc's module map leaves out: secret files' POSIX ACLs. */
#include <sys/xattr.h>

/// CRC-32C (Castagnoli) over `count` bytes, continuing from `state` (no pre/post inversion:
/// the caller starts from 0xFFFFFFFF and inverts the result). SSE4.2's crc32 instruction when
/// the CPU has it, checked once at run time; a table otherwise. Same results either way.
uint32_t shim_crc32c_update(uint32_t state, const uint8_t *bytes, size_t count);

/// The table version alone, so tests can check the fast path against it.
uint32_t shim_crc32c_software_update(uint32_t state, const uint8_t *bytes, size_t count);

/// An exclusive open-file-description lock on the whole file (F_OFD_SETLK, which needs
/// _GNU_SOURCE), without waiting. 0, or -1 with errno (EAGAIN/EACCES: held elsewhere).
int shim_ofd_trylock(int fd);

#endif
