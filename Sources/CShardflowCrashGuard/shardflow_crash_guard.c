// The crash guard: attributes a fatal signal to the workflow code that was running on the thread
// that received it. Only async-signal-safe calls run inside the handler (open, pwrite, close, sigaction, raise).
#include "shardflow_crash_guard.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static _Thread_local const shardflow_crash_site *current_site;

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
    const shardflow_crash_site *site = current_site;
    current_site = NULL;
    int fd = site != NULL && site->path[0] != 0 ? open(site->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
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

int shardflow_crash_site_set(shardflow_crash_site *site, const char *path, const char *bytes, size_t length) {
    size_t path_length = strlen(path);
    if (path_length >= sizeof(site->path)) {
        site->path[0] = 0;
        site->length = 0;
        return -1;
    }
    memcpy(site->path, path, path_length + 1);
    size_t count = length < sizeof(site->record) ? length : sizeof(site->record);
    memcpy(site->record, bytes, count);
    site->length = count;
    return 0;
}
