#ifndef SHARDFLOW_CRASH_GUARD_H
#define SHARDFLOW_CRASH_GUARD_H

#include <stddef.h>

/// Where a crash of the code running on a thread is recorded: the path of a file (opened only by the handler),
/// and the bytes that name the code (preformatted, so the signal handler only copies and writes).
typedef struct shardflow_crash_site {
    size_t length;
    char path[1024];
    char record[480];
} shardflow_crash_site;

/// Installs the handlers for SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSEGV and SIGBUS once per process.
/// Each writes the crashing thread's site (if any) to its file, restores the handler that was there
/// before (the runtime's backtracer, or the default) and lets the signal take its course.
void shardflow_crash_guard_install(void);

/// Makes `site` the calling thread's current site (NULL: none). Returns the previous one.
const shardflow_crash_site *shardflow_crash_guard_enter(const shardflow_crash_site *site);

/// Restores the site `enter` returned.
void shardflow_crash_guard_leave(const shardflow_crash_site *previous);

/// Sets `site`'s file and record (the record truncated to fit). Returns 0, or -1 when the path is too long.
int shardflow_crash_site_set(shardflow_crash_site *site, const char *path, const char *bytes, size_t length);

#endif
