// jemalloc replaces the C library's malloc for the whole `shardflow` process (linked, not preloaded).
#include <jemalloc/jemalloc.h>
