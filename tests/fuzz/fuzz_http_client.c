/* Fuzz target: the outbound HTTP client of the remote stores (storage/http_client.c on
 * libcurl): a loopback server thread answers one GET with the fuzzed bytes and closes, so the
 * status line, headers (Content-Length, ETag, request ids, interim 1xx answers), chunked or
 * truncated bodies all come from the input. The first byte picks how the body is taken:
 * collected into response.body ('0' and anything not below), or streamed through on_data
 * ('1'), which aborts at the first chunk with '2'. Properties: the callback is called exactly
 * once; an answer has a status of 100-999, a Content-Length of -1 or more and a collected
 * body of at most 1 MiB; a failure is a 502 or 504 with a message that does not quote the
 * URL's query (it may carry a signature). */
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "storage/http_client.h"

#define SECRET_QUERY "sig=fuzz-secret-signature"

static h2o_globalconf_t conf;
static h2o_context_t ctx;
static int listen_fd = -1, port;

struct answer {
    const uint8_t *data;
    size_t size;
};

/* Accepts one connection, reads the request head, writes the answer, closes. */
static void *serve(void *p)
{
    const struct answer *a = p;
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[8192];
    size_t got = 0;
    while (got < sizeof(buf)) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memmem(buf, got, "\r\n\r\n", 4) != NULL)
            break;
    }
    for (size_t off = 0; off < a->size;) {
        ssize_t n = send(fd, a->data + off, a->size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    return NULL;
}

static void init(void)
{
    h2o_config_init(&conf);
    h2o_config_register_host(&conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_context_init(&ctx, h2o_evloop_create(), &conf);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    LFS_FUZZ_CHECK(listen_fd >= 0 && bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                   listen(listen_fd, 16) == 0 &&
                   getsockname(listen_fd, (struct sockaddr *)&sa, &len) == 0);
    port = ntohs(sa.sin_port);
}

struct outcome {
    int calls;
    int abort_on_data;
};

static int on_data(void *arg, long status, const char *data, size_t len)
{
    struct outcome *o = arg;
    (void)data, (void)len;
    LFS_FUZZ_CHECK(status >= 100 && status <= 999);
    return o->abort_on_data ? -1 : 0;
}

static void on_done(void *arg, const struct lfs_http_response *res, const struct lfs_error *err)
{
    struct outcome *o = arg;
    o->calls++;
    LFS_FUZZ_CHECK(res != NULL);
    if (err != NULL) {
        LFS_FUZZ_CHECK((err->status == 502 || err->status == 504) && err->message[0] != '\0');
        LFS_FUZZ_CHECK(strstr(err->message, SECRET_QUERY) == NULL);
        return;
    }
    if (res->status < 100 || res->status > 999)
        fprintf(stderr, "status %ld\n", res->status);
    LFS_FUZZ_CHECK(res->status >= 100 && res->status <= 999);
    LFS_FUZZ_CHECK(res->content_length >= -1);
    LFS_FUZZ_CHECK(res->body.len <= 1024 * 1024);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (listen_fd < 0)
        init();
    if (size == 0)
        return 0;
    struct answer a = {data + 1, size - 1};
    pthread_t server;
    LFS_FUZZ_CHECK(pthread_create(&server, NULL, serve, &a) == 0);

    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_io io = {.ctx = &ctx, .pool = &pool};
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/container/blob?" SECRET_QUERY, port);
    struct outcome o = {.abort_on_data = data[0] == '2'};
    struct lfs_http_request req = {.method = "GET",
                                   .url = url,
                                   .timeout_ms = 5000,
                                   .store = "fuzz storage",
                                   .on_data = data[0] == '1' || data[0] == '2' ? on_data : NULL};
    lfs_http_fetch(&io, &req, on_done, &o);
    for (int turn = 0; turn < 1000 && o.calls == 0; turn++)
        h2o_evloop_run(ctx.loop, 10);
    LFS_FUZZ_CHECK(o.calls == 1);
    pthread_join(server, NULL);
    h2o_mem_clear_pool(&pool);
    return 0;
}
