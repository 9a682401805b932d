#ifndef SMARTHOST_SHIM_OPENSSL_H
#define SMARTHOST_SHIM_OPENSSL_H
#include <openssl/ssl.h>

/* OpenSSL macros, one wrapper each, named after the original. */
long shim_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long shim_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
long shim_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long shim_BIO_set_mem_eof_return(BIO *bio, long value);
#endif
