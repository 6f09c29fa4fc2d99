/* The File Locking API routes. Locking is not built yet (it is on the roadmap, shared by
 * all replicas through the storage backend); until then every locks route answers a JSON
 * 404, which git-lfs takes as "locking not supported" and stops asking, instead of a 405
 * that makes it warn on every push. */
#include "server/http.h"

void lfs_handle_locks(struct lfs_request *r)
{
    lfs_http_send_error(r, 404, "this server does not support the Git LFS locking API");
}
