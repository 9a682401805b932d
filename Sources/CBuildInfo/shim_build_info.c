#include "shim_build_info.h"

#ifndef SMARTHOST_VERSION
#define SMARTHOST_VERSION "dev"
#endif
#ifndef SMARTHOST_COMMIT
#define SMARTHOST_COMMIT "unknown"
#endif

const char *shim_build_version(void) { return SMARTHOST_VERSION; }
const char *shim_build_commit(void) { return SMARTHOST_COMMIT; }
