/* libcurl, loaded when the first remote store is configured rather than linked: a server on
 * local storage never maps libcurl and the ~20 libraries it pulls in (gnutls, krb5, ldap,
 * ssh2, ...), which were a third of its resident memory at idle and run constructors at
 * start-up. The types and constants still come from <curl/curl.h>; the calls go through
 * lfs_curl, filled once by lfs_curl_load. */
#ifndef LFS_STORAGE_CURL_API_H
#define LFS_STORAGE_CURL_API_H

#include <curl/curl.h>

#include "common/error.h"

struct lfs_curl_api {
    CURLcode (*global_init)(long flags);
    const char *(*easy_strerror)(CURLcode code);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *easy, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
    CURLcode (*easy_pause)(CURL *easy, int bitmask);
    void (*easy_cleanup)(CURL *easy);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
    CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int ev_bitmask, int *running);
    CURLMcode (*multi_assign)(CURLM *multi, curl_socket_t fd, void *sockp);
    CURLMsg *(*multi_info_read)(CURLM *multi, int *msgs_in_queue);
    CURLMcode (*multi_cleanup)(CURLM *multi);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *line);
    void (*slist_free_all)(struct curl_slist *list);
    CURLU *(*url)(void);
    CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned flags);
    CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part, unsigned flags);
    void (*url_cleanup)(CURLU *u);
    void (*free)(void *p);
    CURLcode (*easy_perform)(CURL *easy); /* blocking: startup checks only */
};

/* The functions, valid after lfs_curl_load returned 0. */
extern struct lfs_curl_api lfs_curl;

/* Loads libcurl.so.4 and runs curl_global_init, once per process (later calls return the
 * first outcome). Returns 0, or -1 with err (500, naming the library and what to install).
 * Any thread; the first call is best made at config time, before worker threads start. */
int lfs_curl_load(struct lfs_error *err);

#endif
