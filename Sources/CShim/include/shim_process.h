#ifndef SMARTHOST_SHIM_PROCESS_H
#define SMARTHOST_SHIM_PROCESS_H

/* prctl(2) is variadic, which Swift cannot call: PR_SET_DUMPABLE 0, so no core dump and
   no ptrace by the same uid can read the secrets in this process's memory. 0 or -1/errno. */
int shim_set_not_dumpable(void);
int shim_is_dumpable(void);

/* Build identity, given by the Makefile as -Xcc -DSMARTHOST_VERSION=… -DSMARTHOST_COMMIT=…
   (a plain `swift build` reports "dev" and "unknown"). */
const char *shim_build_version(void);
const char *shim_build_commit(void);

#include <pthread.h>
/* pthread_setname_np(thread, name), a GNU extension: the name `ps -L`, `top -H` and gdb
   show for the thread (at most 15 bytes; longer names are cut). 0 or an errno. */
int shim_set_thread_name(pthread_t thread, const char *name);

/* OpenSSL's version string at run time (the library actually loaded). */
const char *shim_openssl_version(void);
#endif
