#ifndef SMARTHOST_SHIM_CURL_H
#define SMARTHOST_SHIM_CURL_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them.
   One wrapper per argument type, named after the original. */
CURLcode shim_curl_easy_setopt_long(CURL *curl, CURLoption option, long value);
CURLcode shim_curl_easy_setopt_string(CURL *curl, CURLoption option, const char *value);
CURLcode shim_curl_easy_setopt_pointer(CURL *curl, CURLoption option, void *value);
CURLcode shim_curl_easy_setopt_write_function(CURL *curl,
    size_t (*callback)(char *data, size_t size, size_t count, void *context));
CURLcode shim_curl_easy_setopt_off_t(CURL *curl, CURLoption option, curl_off_t value);
CURLcode shim_curl_easy_setopt_header_function(CURL *curl,
    size_t (*callback)(char *data, size_t size, size_t count, void *context));
CURLcode shim_curl_easy_getinfo_long(CURL *curl, CURLINFO info, long *value);
#endif
