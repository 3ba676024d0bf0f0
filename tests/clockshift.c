/* A node whose time of day is wrong: this library, preloaded (LD_PRELOAD), adds an offset to
 * the wall clock (CLOCK_REALTIME, gettimeofday, time) of a process and of its children, and
 * leaves the monotonic clock, timed waits and sleeps alone. The offset, in seconds, is
 * CLOCK_SHIFT, or what the file CLOCK_SHIFT_FILE holds, read again every second.
 * (Debian's faketime 0.9.10 also moves the monotonic clock, which hangs Python's timed
 * waits, or, with FAKETIME_DONT_FAKE_MONOTONIC, turns its sleeps into EINVAL.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static long shift;
static time_t shift_read_at = -1;

static long current_shift(void) {
    struct timespec now;
    const char *file = getenv("CLOCK_SHIFT_FILE");
    if (!file) {
        const char *value = getenv("CLOCK_SHIFT");
        return value ? atol(value) : 0;
    }
    real_clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    if (now.tv_sec != shift_read_at) {
        FILE *f = fopen(file, "r");
        long value;
        if (f) {
            if (fscanf(f, "%ld", &value) == 1) shift = value;
            fclose(f);
        }
        shift_read_at = now.tv_sec;
    }
    return shift;
}

int clock_gettime(clockid_t clock, struct timespec *tp) {
    if (!real_clock_gettime) real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    int result = real_clock_gettime(clock, tp);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) tp->tv_sec += current_shift();
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec now;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return -1;
    if (tv) {
        tv->tv_sec = now.tv_sec;
        tv->tv_usec = now.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}
