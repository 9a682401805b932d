#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include "shim_process.h"
#include <sys/prctl.h>
#include <openssl/crypto.h>

#ifndef SMARTHOST_VERSION
#define SMARTHOST_VERSION "dev"
#endif
#ifndef SMARTHOST_COMMIT
#define SMARTHOST_COMMIT "unknown"
#endif

int shim_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
int shim_is_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
const char *shim_build_version(void) { return SMARTHOST_VERSION; }
const char *shim_build_commit(void) { return SMARTHOST_COMMIT; }
const char *shim_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

int shim_set_thread_name(pthread_t thread, const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = 0;
    return pthread_setname_np(thread, cut);
}
