// The crash guard: attributes a fatal signal to the workflow code that received it. Only async-signal-safe
// calls run inside the handler (open, pwrite, close, sigaction, raise), plus reads of a thread-local, of a
// lock-free table, and of the Swift runtime's current-task thread-local.
#include "shardflow_crash_guard.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

// The Swift runtime's current task (a thread-local read; public runtime ABI).
extern void *swift_task_getCurrent(void) __attribute__((swiftcall));

static _Thread_local const shardflow_crash_site *current_site;

// Sites of running step tasks, keyed by task pointer: open addressing over a power-of-two table sized
// above the default 100 shards x 50 slots. A slot is claimed by a compare-and-swap of its key.
#define TASK_TABLE_SIZE 16384
#define TASK_TABLE_PROBES 64
static _Atomic(uintptr_t) task_keys[TASK_TABLE_SIZE];
static _Atomic(const shardflow_crash_site *) task_sites[TASK_TABLE_SIZE];

static size_t task_hash(uintptr_t key) {
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 50) & (TASK_TABLE_SIZE - 1);
}

static const shardflow_crash_site *task_site(uintptr_t key) {
    if (key == 0) return NULL;
    size_t start = task_hash(key);
    for (size_t probe = 0; probe < TASK_TABLE_PROBES; probe++) {
        size_t slot = (start + probe) & (TASK_TABLE_SIZE - 1);
        if (atomic_load_explicit(&task_keys[slot], memory_order_acquire) == key) {
            return atomic_load_explicit(&task_sites[slot], memory_order_acquire);
        }
    }
    return NULL;
}

int shardflow_crash_guard_register_task(const shardflow_crash_site *site) {
    uintptr_t key = (uintptr_t)swift_task_getCurrent();
    if (key == 0) return -1;
    size_t start = task_hash(key);
    for (size_t probe = 0; probe < TASK_TABLE_PROBES; probe++) {
        size_t slot = (start + probe) & (TASK_TABLE_SIZE - 1);
        uintptr_t empty = 0;
        if (atomic_load_explicit(&task_keys[slot], memory_order_relaxed) != 0) continue;
        // Only the task with this key ever looks it up (the handler runs on the thread of the code that
        // trapped), and that task is here, so the site may follow the key.
        if (atomic_compare_exchange_strong_explicit(&task_keys[slot], &empty, key, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            atomic_store_explicit(&task_sites[slot], site, memory_order_release);
            return (int)slot;
        }
    }
    return -1;
}

void shardflow_crash_guard_unregister_task(int slot) {
    if (slot < 0 || slot >= TASK_TABLE_SIZE) return;
    atomic_store_explicit(&task_keys[(size_t)slot], 0, memory_order_release);
}

static const int guarded_signals[] = {SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSEGV, SIGBUS};
#define GUARDED_COUNT (sizeof(guarded_signals) / sizeof(guarded_signals[0]))
static struct sigaction previous_actions[GUARDED_COUNT];
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static size_t write_decimal(char *out, int value) {
    char digits[12];
    size_t count = 0;
    unsigned int v = value < 0 ? 0u : (unsigned int)value;
    do {
        digits[count++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && count < sizeof(digits));
    for (size_t i = 0; i < count; i++) out[i] = digits[count - 1 - i];
    return count;
}

static void crash_handler(int signal_number, siginfo_t *info, void *context) {
    (void)context;
    const shardflow_crash_site *site = task_site((uintptr_t)swift_task_getCurrent());
    if (site == NULL) site = current_site;
    current_site = NULL;
    int fd = site != NULL && site->path != NULL ? open(site->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (fd >= 0) {
        // "signal=<n>\n" then the site's record, in one write at the start of the (empty) file.
        char buffer[sizeof(site->record) + 32];
        size_t length = 0;
        memcpy(buffer, "signal=", 7);
        length = 7;
        length += write_decimal(buffer + length, signal_number);
        buffer[length++] = '\n';
        size_t record = site->length < sizeof(site->record) ? site->length : sizeof(site->record);
        memcpy(buffer + length, site->record, record);
        length += record;
        ssize_t ignored = pwrite(fd, buffer, length, 0);
        (void)ignored;
        close(fd);
    }
    for (size_t i = 0; i < GUARDED_COUNT; i++) {
        if (guarded_signals[i] == signal_number) {
            sigaction(signal_number, &previous_actions[i], NULL);
            break;
        }
    }
    // A fault (a trap instruction, a bad access) happens again when the handler returns, now under the
    // previous handler. A signal that was sent (abort, kill) is sent again.
    if (info == NULL || info->si_code <= 0) raise(signal_number);
}

static void install(void) {
    for (size_t i = 0; i < GUARDED_COUNT; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_sigaction = crash_handler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        sigaction(guarded_signals[i], &action, &previous_actions[i]);
    }
}

void shardflow_crash_guard_install(void) { pthread_once(&install_once, install); }

const shardflow_crash_site *shardflow_crash_guard_enter(const shardflow_crash_site *site) {
    const shardflow_crash_site *previous = current_site;
    current_site = site;
    return previous;
}

void shardflow_crash_guard_leave(const shardflow_crash_site *previous) { current_site = previous; }

void shardflow_crash_site_set(shardflow_crash_site *site, const char *path, const char *bytes, size_t length) {
    site->path = path;
    size_t count = length < sizeof(site->record) ? length : sizeof(site->record);
    memcpy(site->record, bytes, count);
    site->length = count;
}
