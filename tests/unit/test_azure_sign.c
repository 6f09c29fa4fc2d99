/* Unit tests for storage/azure_sign.c: every service SAS case of the vectors file (produced by
 * Microsoft's JavaScript SDK) reproduces its string-to-sign, signature and query string; the
 * Shared Key examples reproduce theirs; connection strings parse as the SDKs parse them (and
 * errors never quote the key); base64, dates and blob-path encoding. The vectors file is
 * argv[1]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "storage/azure_sign.h"
#include "storage/storage.h"

static json_t *vectors;

static const char *str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The key of the vectors file, as an account named `name`. */
static void vector_account(const char *name, struct lfs_azure_account *acct)
{
    char cs[512];
    struct lfs_error err = {0};
    snprintf(cs, sizeof(cs),
             "DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;EndpointSuffix=core."
             "windows.net",
             name, str(vectors, "accountKeyBase64"));
    assert_int_equal(lfs_azure_parse_connection_string(cs, acct, &err), 0);
}

static void test_sas_vectors(void **state)
{
    (void)state;
    const json_t *cases = json_object_get(vectors, "cases");
    assert_true(json_array_size(cases) >= 6);
    struct lfs_azure_account acct;
    vector_account(str(vectors, "account"), &acct);
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c)
    {
        struct lfs_azure_sas sas = {
            .permissions = str(c, "sp"),
            .start = str(c, "st"),
            .expiry = str(c, "se"),
            .protocol = str(c, "spr"),
            .version = str(c, "sv"),
            .content_disposition = str(c, "rscd"),
            .content_type = str(c, "rsct"),
        };
        char sts[2048], query[2048];
        int n = lfs_azure_sas_string_to_sign(acct.name, str(c, "container"), str(c, "blob"), &sas,
                                             sts, sizeof(sts));
        print_message("case %s\n", str(c, "name"));
        assert_true(n > 0);
        assert_string_equal(sts, str(c, "stringToSign"));
        char sig[48];
        assert_int_equal(lfs_azure_hmac_base64(acct.key, acct.key_len, sts, (size_t)n, sig), 0);
        assert_string_equal(sig, str(c, "sig"));
        struct lfs_error err = {0};
        n = lfs_azure_sas_query(&acct, str(c, "container"), str(c, "blob"), &sas, query,
                                sizeof(query), &err);
        assert_true(n > 0);
        assert_string_equal(query, str(c, "query"));
    }
}

static void test_sas_small_buffer(void **state)
{
    (void)state;
    struct lfs_azure_account acct;
    vector_account("devstoreaccount1", &acct);
    struct lfs_azure_sas sas = {
        .permissions = "r", .expiry = "2024-01-01T01:00:00Z", .version = LFS_AZURE_VERSION};
    char buf[64];
    assert_int_equal(lfs_azure_sas_string_to_sign(acct.name, "lfs", "a/b", &sas, buf, 20), -1);
    struct lfs_error err = {0};
    assert_int_equal(lfs_azure_sas_query(&acct, "lfs", "a/b", &sas, buf, sizeof(buf), &err), -1);
    assert_int_equal(err.status, 500);
    /* Required fields. */
    sas.expiry = NULL;
    assert_int_equal(lfs_azure_sas_string_to_sign(acct.name, "lfs", "a/b", &sas, buf, sizeof(buf)),
                     -1);
}

static void test_shared_key_examples(void **state)
{
    (void)state;
    const json_t *examples = json_object_get(vectors, "sharedKeyExamples");
    assert_int_equal(json_array_size(examples), 2);
    size_t i;
    const json_t *ex;
    json_array_foreach(examples, i, ex)
    {
        const char *name =
            str(ex, "account") != NULL ? str(ex, "account") : str(vectors, "account");
        struct lfs_azure_account acct;
        vector_account(name, &acct);
        char lines[16][256];
        const char *headers[17];
        size_t nh = 0;
        const char *hname;
        const json_t *hval;
        json_object_foreach((json_t *)json_object_get(ex, "headers"), hname, hval)
        {
            snprintf(lines[nh], sizeof(lines[nh]), "%s: %s", hname, json_string_value(hval));
            headers[nh] = lines[nh];
            nh++;
        }
        headers[nh] = NULL;
        struct lfs_azure_request req = {
            .method = str(ex, "method"), .path = str(ex, "urlPath"), .headers = headers};
        char sts[2048], auth[256];
        assert_true(lfs_azure_shared_key_string_to_sign(acct.name, &req, sts, sizeof(sts)) > 0);
        assert_string_equal(sts, str(ex, "stringToSign"));
        struct lfs_error err = {0};
        assert_true(lfs_azure_shared_key(&acct, &req, auth, sizeof(auth), &err) > 0);
        assert_string_equal(auth, str(ex, "authorization"));
    }
}

/* Query parameters: names lowercased and sorted, values decoded, repeats comma-joined; header
 * order and case do not matter; a zero Content-Length is signed empty. */
static void test_shared_key_canonical(void **state)
{
    (void)state;
    const char *headers[] = {"X-MS-Version: 2021-08-06", "Content-Length: 0",
                             "x-ms-date:  Mon, 01 Jan 2024 00:00:00 GMT ", "x-ms-range: bytes=0-9",
                             NULL};
    struct lfs_azure_request req = {.method = "GET",
                                    .path = "/acct/lfs/blob",
                                    .query = "comp=blocklist&blocklisttype=uncommitted&B=2&b=1",
                                    .headers = headers};
    char sts[1024];
    assert_true(lfs_azure_shared_key_string_to_sign("acct", &req, sts, sizeof(sts)) > 0);
    assert_string_equal(sts,
                        "GET\n\n\n\n\n\n\n\n\n\n\n\n"
                        "x-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\n"
                        "x-ms-range:bytes=0-9\n"
                        "x-ms-version:2021-08-06\n"
                        "/acct/acct/lfs/blob\nb:1,2\nblocklisttype:uncommitted\ncomp:blocklist");
    /* A non-zero length and a Range header take their lines. */
    const char *put_headers[] = {"Content-Length: 5", "Range: bytes=1-2",
                                 "x-ms-date: Mon, 01 Jan 2024 00:00:00 GMT", NULL};
    req = (struct lfs_azure_request){
        .method = "PUT", .path = "/lfs/x%2Fy", .query = "blockid=AA%3D%3D", .headers = put_headers};
    assert_true(lfs_azure_shared_key_string_to_sign("acct", &req, sts, sizeof(sts)) > 0);
    assert_string_equal(sts, "PUT\n\n\n5\n\n\n\n\n\n\n\nbytes=1-2\n"
                             "x-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\n"
                             "/acct/lfs/x%2Fy\nblockid:AA==");
    assert_int_equal(lfs_azure_shared_key_string_to_sign("acct", &req, sts, 16), -1);
}

#define DEV_KEY LFS_AZURE_DEV_KEY

static void test_connection_string_dev(void **state)
{
    (void)state;
    struct lfs_azure_account a;
    struct lfs_error err = {0};
    assert_int_equal(lfs_azure_parse_connection_string("UseDevelopmentStorage=true", &a, &err), 0);
    assert_string_equal(a.name, "devstoreaccount1");
    assert_string_equal(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    assert_string_equal(a.path, "/devstoreaccount1");
    assert_int_equal(a.key_len, 64);
    /* Key names are case-insensitive; whitespace and empty parts are ignored. */
    assert_int_equal(lfs_azure_parse_connection_string(" usedevelopmentstorage = TRUE ;", &a, &err),
                     0);
    assert_string_equal(a.name, "devstoreaccount1");
    assert_int_equal(lfs_azure_parse_connection_string("UseDevelopmentStorage=false", &a, &err),
                     -1);
}

static void test_connection_string_full(void **state)
{
    (void)state;
    struct lfs_azure_account a;
    struct lfs_error err = {0};
    /* Azurite's documented explicit form, with a trailing ';'. */
    assert_int_equal(
        lfs_azure_parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" DEV_KEY
            ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://"
            "127.0.0.1:10001/devstoreaccount1;",
            &a, &err),
        0);
    assert_string_equal(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    assert_string_equal(a.path, "/devstoreaccount1");
    /* Production: endpoint from the account name, protocol and suffix. */
    assert_int_equal(lfs_azure_parse_connection_string(
                         "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=" DEV_KEY
                         ";EndpointSuffix=core.chinacloudapi.cn",
                         &a, &err),
                     0);
    assert_string_equal(a.name, "myacct");
    assert_string_equal(a.endpoint, "https://myacct.blob.core.chinacloudapi.cn");
    assert_string_equal(a.path, "");
    /* Defaults: https and core.windows.net; mixed-case key names. */
    assert_int_equal(
        lfs_azure_parse_connection_string("accountname=myacct;ACCOUNTKEY=" DEV_KEY, &a, &err), 0);
    assert_string_equal(a.endpoint, "https://myacct.blob.core.windows.net");
    /* A custom endpoint (e.g. a private link) wins over the suffix. */
    assert_int_equal(
        lfs_azure_parse_connection_string("AccountName=myacct;AccountKey=" DEV_KEY
                                          ";BlobEndpoint=HTTPS://blob.example.org;EndpointSuffix=x",
                                          &a, &err),
        0);
    assert_string_equal(a.endpoint, "https://blob.example.org");
    assert_string_equal(a.path, "");
    /* The value is split on the first '=' only: the key keeps its padding. */
    assert_int_equal(
        lfs_azure_parse_connection_string("AccountName=a1;AccountKey=AAAA==", &a, &err),
        -1); /* 6 characters: not base64 */
    assert_int_equal(lfs_azure_parse_connection_string("AccountName=a1;AccountKey=AAA=", &a, &err),
                     0);
    assert_int_equal(a.key_len, 2);
}

static void test_connection_string_errors(void **state)
{
    (void)state;
    struct lfs_azure_account a;
    struct lfs_error err = {0};
    const char *bad_key = "AccountName=a1;AccountKey=not*base64!secret";
    assert_int_equal(lfs_azure_parse_connection_string(bad_key, &a, &err), -1);
    assert_non_null(strstr(err.message, "AccountKey is not valid base64"));
    assert_null(strstr(err.message, "secret"));
    assert_int_equal(lfs_azure_parse_connection_string("AccountName=a1;AccountKey=abc", &a, &err),
                     -1); /* length not a multiple of 4 */
    assert_int_equal(lfs_azure_parse_connection_string("AccountKey=" DEV_KEY, &a, &err), -1);
    assert_non_null(strstr(err.message, "AccountName is missing"));
    assert_int_equal(lfs_azure_parse_connection_string("AccountName=a1", &a, &err), -1);
    assert_non_null(strstr(err.message, "AccountKey is missing"));
    assert_int_equal(
        lfs_azure_parse_connection_string("AccountName=a1;AccountKey" DEV_KEY, &a, &err), -1);
    assert_null(strstr(err.message, "Eby8"));
    assert_int_equal(lfs_azure_parse_connection_string("", &a, &err), -1);
    assert_int_equal(
        lfs_azure_parse_connection_string(
            "DefaultEndpointsProtocol=ftp;AccountName=a1;AccountKey=" DEV_KEY, &a, &err),
        -1);
    assert_int_equal(lfs_azure_parse_connection_string("AccountName=a1;AccountKey=" DEV_KEY
                                                       ";BlobEndpoint=127.0.0.1:10000",
                                                       &a, &err),
                     -1);
    assert_int_equal(lfs_azure_parse_connection_string(
                         "AccountName=a1;AccountKey=" DEV_KEY ";BlobEndpoint=http://", &a, &err),
                     -1);
    assert_int_equal(
        lfs_azure_parse_connection_string("AccountName=a-1;AccountKey=" DEV_KEY, &a, &err), -1);
}

static void test_base64(void **state)
{
    (void)state;
    char out[16];
    unsigned char bin[16];
    assert_int_equal(lfs_azure_base64_encode((const unsigned char *)"", 0, out), 0);
    assert_int_equal(lfs_azure_base64_encode((const unsigned char *)"f", 1, out), 4);
    assert_string_equal(out, "Zg==");
    lfs_azure_base64_encode((const unsigned char *)"fo", 2, out);
    assert_string_equal(out, "Zm8=");
    lfs_azure_base64_encode((const unsigned char *)"foobar", 6, out);
    assert_string_equal(out, "Zm9vYmFy");
    assert_int_equal(lfs_azure_base64_decode("Zm9vYmFy", 8, bin, sizeof(bin)), 6);
    assert_memory_equal(bin, "foobar", 6);
    assert_int_equal(lfs_azure_base64_decode("Zm8=", 4, bin, sizeof(bin)), 2);
    assert_int_equal(lfs_azure_base64_decode("Zg==", 4, bin, sizeof(bin)), 1);
    /* Not base64: bad characters, bad padding, non-canonical bits, no room. */
    assert_int_equal(lfs_azure_base64_decode("Zm9", 3, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("Zm 9", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("Z===", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("Zg=a", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("Zh==", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("Zg==Zg==", 8, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("Zm9vYmFy", 8, bin, 5), (size_t)-1);
    assert_int_equal(lfs_azure_base64_decode("-_==", 4, bin, sizeof(bin)), (size_t)-1);
}

static void test_dates_paths_types(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(lfs_azure_iso8601(1704067200, buf), "2024-01-01T00:00:00Z");
    assert_string_equal(lfs_azure_rfc1123(1704067200, buf), "Mon, 01 Jan 2024 00:00:00 GMT");
    assert_string_equal(lfs_azure_rfc1123(951782400 + 86399, buf), "Tue, 29 Feb 2000 23:59:59 GMT");
    assert_int_equal(lfs_azure_path_encode("pre fix/org/a+b@c/x", buf), 25);
    assert_string_equal(buf, "pre%20fix/org/a%2Bb%40c/x");
    lfs_azure_path_encode("a", buf);
    assert_string_equal(buf, "a");
    assert_string_equal(lfs_azure_content_type_for("Data.CSV"), "text/csv");
    assert_string_equal(lfs_azure_content_type_for("x.tar.gz"), "application/gzip");
    assert_null(lfs_azure_content_type_for("noext"));
    assert_null(lfs_azure_content_type_for("a.unknownext"));
    assert_null(lfs_azure_content_type_for("dir.d/file"));
    assert_null(lfs_azure_content_type_for(NULL));
}

#define LIST_HEAD                                                                                  \
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults "                               \
    "ContainerName=\"lfs\"><Prefix>pp/org/repo/</Prefix><MaxResults>4</MaxResults><Blobs>"
#define LIST_OID_A "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
#define LIST_OID_B "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"
#define LIST_BLOB(name, len)                                                                       \
    "<Blob><Name>" name "</Name><Properties><Etag>0x1</Etag><Content-Length>" len                  \
    "</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>"

static int parse_listing(const char *xml, h2o_mem_pool_t *pool, struct lfs_storage_listing *out)
{
    return lfs_azure_parse_listing(xml, strlen(xml), "pp/org/repo/", pool, out);
}

/* List Blobs answers: oids with sizes, nested names skipped but counted for the reach, the
 * reach itself, and every answer that cannot be trusted refused. */
static void test_parse_listing(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_storage_listing l;
    /* complete: <NextMarker /> */
    assert_int_equal(parse_listing(LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A,
                                                       "5") LIST_BLOB("pp/org/repo/a0/nested", "1")
                                       LIST_BLOB("pp/org/repo/" LIST_OID_B, "0") "</Blobs>"
                                                                                 "<NextMarker />"
                                                                                 "</"
                                                                                 "EnumerationR"
                                                                                 "esults>",
                                   &pool, &l),
                     0);
    assert_true(l.complete);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.oids[0], LIST_OID_A);
    assert_true(l.sizes[0] == 5);
    assert_string_equal(l.oids[1], LIST_OID_B);
    assert_true(l.sizes[1] == 0);
    /* empty and complete */
    assert_int_equal(
        parse_listing(LIST_HEAD "</Blobs><NextMarker/></EnumerationResults>", &pool, &l), 0);
    assert_true(l.complete);
    assert_int_equal(l.n, 0);
    /* <Blobs /> */
    assert_int_equal(
        parse_listing("<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>", &pool,
                      &l),
        0);
    assert_true(l.complete);
    /* incomplete: reaches the last blob listed, even a nested one; names unescaped */
    assert_int_equal(parse_listing(LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A, "5")
                                       LIST_BLOB("pp/org/repo/b&amp;c", "1") "</Blobs>"
                                                                             "<NextMarker>2!x</"
                                                                             "NextMarker></"
                                                                             "EnumerationResults>",
                                   &pool, &l),
                     0);
    assert_false(l.complete);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.last, "b&c");
    /* refused: out of order, repeated, another prefix, a bad length, no NextMarker, no
     * listing at all */
    static const char *const bad[] = {
        LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_B, "1")
            LIST_BLOB("pp/org/repo/" LIST_OID_A, "1") "</Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A, "1")
            LIST_BLOB("pp/org/repo/" LIST_OID_A, "1") "</Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD LIST_BLOB("pp/org/other/" LIST_OID_A,
                            "1") "</Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A,
                            "-1") "</Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A,
                            "12x") "</Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD "<Blob><Name>pp/org/repo/" LIST_OID_A
                  "</Name></Blob></Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A, "1") "</Blobs></EnumerationResults>",
        LIST_HEAD "<Blob><Name>pp/org/repo/" LIST_OID_A,
        "<Error><Code>AuthenticationFailed</Code></Error>",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("refused listing %zu\n", i);
        assert_int_equal(parse_listing(bad[i], &pool, &l), -1);
    }
    h2o_mem_clear_pool(&pool);
}

/* List Blobs answers of a repository's locks (include=metadata): lock blobs with their
 * content from the metadata and their ETag quoted as the version; other names, blobs without
 * metadata and bad base64 skipped; the NextMarker; answers that are no listing refused. */
#define LOCK_NAME_A "0123456789abcdef0123456789abcdef01234567"
#define LOCK_NAME_B "1123456789abcdef0123456789abcdef01234567"
#define LOCK_BLOB(name, meta)                                                                      \
    "<Blob><Name>pp/org/repo/locks/" name "</Name><Properties><Etag>0x8D1</Etag>"                  \
    "<Content-Length>10</Content-Length></Properties>" meta "</Blob>"

static void test_parse_lock_listing(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_lock_record *recs = NULL;
    size_t n = 99;
    const char *marker = NULL;
    static const char ok[] = LIST_HEAD LOCK_BLOB(
        LOCK_NAME_A ".lock", "<Metadata><lock>eyJpZCI6ImEifQ==</lock></Metadata>")
        LOCK_BLOB(LOCK_NAME_A ".tmp", "<Metadata><lock>eyJpZCI6ImEifQ==</lock></Metadata>")
            LOCK_BLOB(LOCK_NAME_B ".lock", "")
                LOCK_BLOB("2123456789abcdef0123456789abcdef01234567.lock",
                          "<Metadata><lock>not base64!</lock></Metadata>") "</Blobs><NextMarker>"
                                                                           "m&amp;1</NextMarker></"
                                                                           "EnumerationResults>";
    assert_int_equal(lfs_azure_parse_lock_listing(ok, strlen(ok), "pp/org/repo/locks/", &pool,
                                                  &recs, &n, &marker),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].name, LOCK_NAME_A);
    assert_int_equal(recs[0].content.len, 10);
    assert_memory_equal(recs[0].content.base, "{\"id\":\"a\"}", 10);
    assert_string_equal(recs[0].version, "\"0x8D1\"");
    assert_string_equal(marker, "m&1");
    static const char empty[] = LIST_HEAD "</Blobs><NextMarker /></EnumerationResults>";
    assert_int_equal(lfs_azure_parse_lock_listing(empty, strlen(empty), "pp/org/repo/locks/", &pool,
                                                  &recs, &n, &marker),
                     0);
    assert_int_equal(n, 0);
    assert_string_equal(marker, "");
    static const char *const bad[] = {
        LIST_HEAD "<Blob><Name>pp/org/other/locks/" LOCK_NAME_A
                  ".lock</Name></Blob></Blobs><NextMarker/></EnumerationResults>",
        LIST_HEAD "</Blobs></EnumerationResults>",
        LIST_HEAD "<Blob><Name>pp/org/repo/locks/x",
        "<Error><Code>AuthenticationFailed</Code></Error>",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("refused lock listing %zu\n", i);
        assert_int_equal(lfs_azure_parse_lock_listing(bad[i], strlen(bad[i]), "pp/org/repo/locks/",
                                                      &pool, &recs, &n, &marker),
                         -1);
    }
    h2o_mem_clear_pool(&pool);
}

/* The page a scan reads: every name under the prefix (nested ones included) with its size,
 * -1 for a blob without a usable Content-Length, and the next marker. */
static void test_parse_blobs(void **state)
{
    (void)state;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    struct lfs_azure_blob_page page;
    static const char xml[] = LIST_HEAD LIST_BLOB("pp/org/repo/" LIST_OID_A, "5")
        LIST_BLOB("pp/org/repo/a0/" LIST_OID_B,
                  "7") "<Blob><Name>pp/org/repo/zz</Name></Blob></Blobs><NextMarker>m&amp;1</"
                       "NextMarker></EnumerationResults>";
    assert_int_equal(lfs_azure_parse_blobs(xml, strlen(xml), "pp/", &pool, &page), 0);
    assert_int_equal(page.n, 3);
    assert_string_equal(page.blobs[0].name, "org/repo/" LIST_OID_A);
    assert_true(page.blobs[0].size == 5);
    assert_string_equal(page.blobs[1].name, "org/repo/a0/" LIST_OID_B);
    assert_true(page.blobs[1].size == 7);
    assert_string_equal(page.blobs[2].name, "org/repo/zz");
    assert_true(page.blobs[2].size == -1);
    assert_string_equal(page.next_marker, "m&1");
    static const char last[] = LIST_HEAD "</Blobs><NextMarker /></EnumerationResults>";
    assert_int_equal(lfs_azure_parse_blobs(last, strlen(last), "pp/", &pool, &page), 0);
    assert_int_equal(page.n, 0);
    assert_null(page.next_marker);
    /* another prefix: not an answer to this listing */
    assert_int_equal(lfs_azure_parse_blobs(xml, strlen(xml), "other/", &pool, &page), -1);
    h2o_mem_clear_pool(&pool);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s service_sas_vectors.json\n", argv[0]);
        return 2;
    }
    json_error_t jerr;
    vectors = json_load_file(argv[1], 0, &jerr);
    if (vectors == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sas_vectors),
        cmocka_unit_test(test_sas_small_buffer),
        cmocka_unit_test(test_shared_key_examples),
        cmocka_unit_test(test_shared_key_canonical),
        cmocka_unit_test(test_connection_string_dev),
        cmocka_unit_test(test_connection_string_full),
        cmocka_unit_test(test_connection_string_errors),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_dates_paths_types),
        cmocka_unit_test(test_parse_listing),
        cmocka_unit_test(test_parse_lock_listing),
        cmocka_unit_test(test_parse_blobs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(vectors);
    return rc;
}
