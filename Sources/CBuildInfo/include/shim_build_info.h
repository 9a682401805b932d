#ifndef SMARTHOST_SHIM_BUILD_INFO_H
#define SMARTHOST_SHIM_BUILD_INFO_H
/* Build identity, given by the Makefile as -Xcc -DSMARTHOST_VERSION=… -DSMARTHOST_COMMIT=…
   (a plain `swift build` reports "dev" and "unknown"). C because only the C compiler takes
   a string from the command line. */
const char *shim_build_version(void);
const char *shim_build_commit(void);
#endif
