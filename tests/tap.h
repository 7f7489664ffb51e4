/* A tiny TAP producer for the unit tests: automake's tap-driver.sh reads it.
 * Usage: ok(cond, "name"); is_int(a, b, "name"); is_str(a, b, "name");
 * then return tap_done(); at the end of main. */
#ifndef SL_TAP_H
#define SL_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *name)
{
    tap_n++;
    printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

static char tap_tmp[64];

static inline void tap_rm_tmp(void)
{
    char cmd[96];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tap_tmp);
    if (tap_tmp[0] != '\0' && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tap_tmp);
}

/* Points TMPDIR at a directory of this test alone, removed at exit: for
 * code that keeps files under it (the spool, the host's counter table),
 * so that runs of the same test at once or one after the other do not
 * share state. */
static inline void tap_private_tmpdir(void)
{
    snprintf(tap_tmp, sizeof(tap_tmp), "/tmp/sluice-unit-XXXXXX");
    if (mkdtemp(tap_tmp) == NULL || setenv("TMPDIR", tap_tmp, 1) != 0) {
        tap_tmp[0] = '\0';
        return;
    }
    atexit(tap_rm_tmp);
}

#define ok(cond, name) tap_ok(!!(cond), __FILE__, __LINE__, (name))

#define is_int(got, want, name)                                                 \
    do {                                                                        \
        long long g_ = (long long)(got), w_ = (long long)(want);                \
        if (!ok(g_ == w_, (name)))                                              \
            printf("#   got %lld, want %lld\n", g_, w_);                        \
    } while (0)

#define is_str(got, want, name)                                                 \
    do {                                                                        \
        const char *g_ = (got), *w_ = (want);                                   \
        int same_ = (g_ == NULL && w_ == NULL) ||                               \
                    (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0);          \
        if (!ok(same_, (name)))                                                 \
            printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)",         \
                   w_ ? w_ : "(null)");                                         \
    } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
