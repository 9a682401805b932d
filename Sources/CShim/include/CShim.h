#ifndef SMARTHOST_CSHIM_H
#define SMARTHOST_CSHIM_H
#include "shim_reactor.h"
#include "shim_openssl.h"
#include "shim_spool.h"
#include "shim_process.h"
#include "shim_curl.h"
#endif
