/* Preloaded under valgrind by benchmarks/callgrind.sh. Valgrind 3.19 (Debian 12) writes
 * into the signal mask a program hands to sigsuspend(2) (it removes its own VG_SIGVGKILL);
 * libdispatch, which runs Swift's async main, passes a mask in read-only memory, and
 * valgrind dies with "the 'impossible' happened". Handing the call a writable copy of
 * the mask avoids it and changes nothing else. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask) {
    static int (*next)(const sigset_t *);
    if (!next) next = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    sigset_t copy = *mask;
    return next(&copy);
}
