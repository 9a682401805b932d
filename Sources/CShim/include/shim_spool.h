#ifndef SMARTHOST_SHIM_SPOOL_H
#define SMARTHOST_SHIM_SPOOL_H

/// renameat2(RENAME_NOREPLACE): one directory operation where link+unlink is two.
/// Returns 0, or -1 with errno (EINVAL/ENOSYS where the file system cannot).
int shim_rename_noreplace(const char *from, const char *to);

#endif
