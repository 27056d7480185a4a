#ifndef SHARDFLOW_CRASH_GUARD_H
#define SHARDFLOW_CRASH_GUARD_H

#include <stddef.h>

/// Where a crash of some workflow code is recorded: the path of a file (opened only by the signal handler;
/// the string is owned by whoever made the site and outlives it), and the bytes that name the code
/// (preformatted, so the handler only copies and writes).
typedef struct shardflow_crash_site {
    const char *path;
    size_t length;
    char record[256];
} shardflow_crash_site;

/// Installs the handlers for SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSEGV and SIGBUS once per process.
/// Each writes the site of the code that received the signal (the current Swift task's, else the
/// thread's) to its file, restores the handler that was there before (the runtime's backtracer, or the
/// default) and lets the signal take its course.
void shardflow_crash_guard_install(void);

/// Makes `site` the calling thread's current site (NULL: none). Returns the previous one. For code that
/// runs synchronously on one thread (a workflow body drained by its pump).
const shardflow_crash_site *shardflow_crash_guard_enter(const shardflow_crash_site *site);

/// Restores the site `enter` returned.
void shardflow_crash_guard_leave(const shardflow_crash_site *previous);

/// Makes `site` the current Swift task's site, on whatever thread the task runs (a step's task, across
/// its suspensions). Returns a slot for `unregister`, or -1 when the table is full or no task runs.
int shardflow_crash_guard_register_task(const shardflow_crash_site *site);

/// Forgets the task's site (from the same task, before the site is freed).
void shardflow_crash_guard_unregister_task(int slot);

/// Sets `site`'s file and record (the record truncated to fit).
void shardflow_crash_site_set(shardflow_crash_site *site, const char *path, const char *bytes, size_t length);

#endif
