/* See curl_api.h. The library is never unloaded: curl keeps global state until exit. */
#include "storage/curl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#define LFS_CURL_LIBRARY "libcurl.so.4"

struct lfs_curl_api lfs_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct lfs_error load_error;

static void load(void)
{
    static const struct {
        const char *name;
        size_t offset;
    } symbols[] = {
#define SYM(field, symbol) {symbol, offsetof(struct lfs_curl_api, field)}
        SYM(global_init, "curl_global_init"),
        SYM(easy_strerror, "curl_easy_strerror"),
        SYM(easy_init, "curl_easy_init"),
        SYM(easy_setopt, "curl_easy_setopt"),
        SYM(easy_getinfo, "curl_easy_getinfo"),
        SYM(easy_pause, "curl_easy_pause"),
        SYM(easy_cleanup, "curl_easy_cleanup"),
        SYM(multi_init, "curl_multi_init"),
        SYM(multi_setopt, "curl_multi_setopt"),
        SYM(multi_add_handle, "curl_multi_add_handle"),
        SYM(multi_remove_handle, "curl_multi_remove_handle"),
        SYM(multi_socket_action, "curl_multi_socket_action"),
        SYM(multi_assign, "curl_multi_assign"),
        SYM(multi_info_read, "curl_multi_info_read"),
        SYM(multi_cleanup, "curl_multi_cleanup"),
        SYM(slist_append, "curl_slist_append"),
        SYM(slist_free_all, "curl_slist_free_all"),
        SYM(url, "curl_url"),
        SYM(url_set, "curl_url_set"),
        SYM(url_get, "curl_url_get"),
        SYM(url_cleanup, "curl_url_cleanup"),
        SYM(free, "curl_free"),
        SYM(easy_perform, "curl_easy_perform"),
#undef SYM
    };
    struct lfs_curl_api api;
    void *lib = dlopen(LFS_CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        lfs_error_set(&load_error, 500,
                      "remote storage needs libcurl, which could not be loaded (%s); install "
                      "it (Debian: apt-get install libcurl4)",
                      dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
        void *fn = dlsym(lib, symbols[i].name);
        if (fn == NULL) {
            lfs_error_set(&load_error, 500,
                          "remote storage: %s has no %s; libcurl 7.62 or later is needed",
                          LFS_CURL_LIBRARY, symbols[i].name);
            return;
        }
        /* POSIX: a function pointer and the void * dlsym returns have the same form. */
        memcpy((char *)&api + symbols[i].offset, &fn, sizeof(fn));
    }
    CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        lfs_error_set(&load_error, 500, "remote storage: curl_global_init failed: %s",
                      api.easy_strerror(rc));
        return;
    }
    lfs_curl = api;
}

int lfs_curl_load(struct lfs_error *err)
{
    pthread_once(&load_once, load);
    if (load_error.status == 0)
        return 0;
    *err = load_error;
    return -1;
}
