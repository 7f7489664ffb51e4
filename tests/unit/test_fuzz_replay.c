/* Replays every fuzz input kept in the tree through the fuzz targets, without
 * libFuzzer: each file in tests/fuzz/corpus/<target>/ (the seeds) and in
 * tests/fuzz/regressions/<target>/ (inputs that once crashed a target, kept
 * after the fix). So `make check` runs them with whatever compiler and
 * sanitizers built the tree. A broken invariant is a "not ok" naming the
 * input; a crash ends the test, and the last "# replay" line names it. */
#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"
#include "tap.h"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *p = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n + 1)) != NULL && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p != NULL)
        *len = (size_t)n;
    fclose(f);
    return p;
}

static jmp_buf broken;

static void on_fail(const char *what)
{
    (void)what;           /* sl_fuzz_fail printed it */
    longjmp(broken, 1);
}

static int by_name(const struct dirent **x, const struct dirent **y)
{
    return strcmp((*x)->d_name, (*y)->d_name);
}

/* Runs every file in dir through t; returns how many, or -1 if one could
 * not be read or broke an invariant (a "not ok" names it). A missing
 * directory holds nothing. */
static int replay_dir(const struct sl_fuzz_target *t, const char *dir, const char *label)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name), count = 0, bad = 0;

    for (int i = 0; i < n; i++) {
        char path[4096], msg[1024];
        unsigned char *volatile data = NULL;
        size_t len = 0;

        if (names[i]->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            snprintf(msg, sizeof(msg), "%s/%s/%s", label, t->name, names[i]->d_name);
            printf("# replay %s\n", msg);
            fflush(stdout);
            if ((data = slurp(path, &len)) == NULL) {
                ok(0, msg);
                bad = 1;
            } else if (setjmp(broken) == 0) {
                t->run(data, len);
                count++;
            } else {
                ok(0, msg);       /* what broke is on stderr */
                bad = 1;
            }
            free(data);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return bad ? -1 : count;
}

/* Every directory under root must be a target's: a misspelt one would be
 * silently skipped. Plain files there (a README) are not inputs. */
static void check_names(const char *root, const char *label)
{
    struct dirent **names;
    int n = scandir(root, &names, NULL, by_name);

    for (int i = 0; i < n; i++) {
        char path[4096], msg[512];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", root, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(msg, sizeof(msg), "tests/fuzz/%s/%s is a fuzz target's", label, names[i]->d_name);
            ok(sl_fuzz_find(names[i]->d_name) != NULL, msg);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
}

int main(void)
{
    const char *data = getenv("SL_TEST_DATA") ? getenv("SL_TEST_DATA") : "tests/data";
    char corpus[2048], regressions[2048];

    snprintf(corpus, sizeof(corpus), "%s/../fuzz/corpus", data);
    snprintf(regressions, sizeof(regressions), "%s/../fuzz/regressions", data);
    sl_fuzz_fail_hook = on_fail;
    for (const struct sl_fuzz_target *t = sl_fuzz_targets; t->name != NULL; t++) {
        char dir[4096], msg[256];
        int seeds, crashes;

        snprintf(dir, sizeof(dir), "%s/%s", corpus, t->name);
        seeds = replay_dir(t, dir, "corpus");
        snprintf(msg, sizeof(msg), "%s: %d corpus inputs replayed%s", t->name, seeds < 0 ? 0 : seeds,
                 seeds < 0 ? ", some broke" : "");
        ok(seeds > 0, msg);
        snprintf(dir, sizeof(dir), "%s/%s", regressions, t->name);
        crashes = replay_dir(t, dir, "regressions");
        snprintf(msg, sizeof(msg), "%s: %d regression inputs replayed%s", t->name,
                 crashes < 0 ? 0 : crashes, crashes < 0 ? ", some broke" : "");
        ok(crashes >= 0, msg);
    }
    check_names(corpus, "corpus");
    check_names(regressions, "regressions");
    return tap_done();
}
