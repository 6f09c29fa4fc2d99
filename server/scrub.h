/* `lfsgate scrub`: reads every stored object of the configured storage and checks it hashes
 * to its oid (server/scrub.c). */
#ifndef LFS_SERVER_SCRUB_H
#define LFS_SERVER_SCRUB_H

#include "common/error.h"

struct lfs_app;

/* Builds the app from a config file (NULL: the environment, else the built-in config), as
 * the server does at startup: one reference for the caller, or NULL with err. */
typedef struct lfs_app *(*lfs_scrub_load_fn)(const char *config_file, struct lfs_error *err);

/* Runs the subcommand: argv[0] is "scrub", then its options. Returns the process exit status:
 * 0 every object is intact, 1 some object is corrupt or not its listed size, 2 a usage or
 * configuration error (or a storage that cannot be scrubbed), 3 some object or listing could
 * not be read (store errors) and none was found corrupt. Main thread; runs its own event loop
 * and ends with lfs_storage_thread_cleanup. */
int lfs_scrub_main(int argc, char **argv, lfs_scrub_load_fn load);

#endif
