/* Unit tests of the counter tables (ctable.h): a private table, and the
 * host table shared through a mapped file by processes (forked here): exact
 * counts under contention, a holder killed with the lock held, and a
 * foreign or outdated file re-initialised. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctable.h"
#include "status.h"
#include "tap.h"

static char dir[240];             /* $TMPDIR (else P_tmpdir)/sl-ctable-XXXXXX */

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static long long value_of(struct sl_ctable *t, const char *name)
{
    long long v = -1;

    (void)sl_ctable_add(t, name, 0, 0, 60, &v);
    return v;
}

static void test_private(void)
{
    struct sl_ctable t = SL_CTABLE_INIT;
    long long v = -1;

    is_int(sl_ctable_add(&t, "a", 5, 2, 60, &v), 0, "private: add");
    is_int(v, 7, "private: a new counter starts at base");
    (void)sl_ctable_add(&t, "a", 100, -10, 60, &v);
    is_int(v, 0, "private: a decrement stops at 0; base only counts for a new counter");
    sl_ctable_forget(&t, "a");
    is_int(value_of(&t, "a"), 0, "private: forgotten");
    ok(t.shared == NULL, "private: not shared");
    free(t.slots);
}

/* n children map path each on their own, wait for go, add 1 to "c" per
 * round; 0 when all exited cleanly. */
static int run_adders(const char *path, int n, int rounds)
{
    int go[2], bad = 0;
    pid_t pids[8];

    if (pipe(go) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if ((pids[i] = fork()) == 0) {
            struct sl_ctable t = SL_CTABLE_INIT;
            char why[256], c;
            long long v;

            close(go[1]);
            if (read(go[0], &c, 1) != 0)      /* EOF: the parent closed it, go */
                _exit(3);
            if (sl_ctable_map(&t, path, why, sizeof(why)) != SL_OK)
                _exit(2);
            for (int r = 0; r < rounds; r++)
                if (sl_ctable_add(&t, "c", 0, 1, 600, &v) != 0)
                    _exit(1);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]);                /* every child starts now, mapping at the same time */
    for (int i = 0; i < n; i++) {
        int st;

        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    return bad;
}

static void test_shared_counts(void)
{
    struct sl_ctable t = SL_CTABLE_INIT;
    char path[256], why[256] = "";

    path_of(path, sizeof(path), "counts.shm");
    is_int(run_adders(path, 2, 10000), 0, "shared: two processes mapped a new file together and added");
    is_int(sl_ctable_map(&t, path, why, sizeof(why)), SL_OK, "shared: mapped again");
    ok(t.shared != NULL, "shared: is shared");
    is_int(value_of(&t, "c"), 20000, "shared: 2 x 10000 increments from two processes = 20000");
    is_int(run_adders(path, 4, 2500), 0, "shared: four more processes");
    is_int(value_of(&t, "c"), 30000, "shared: they found the same counter");
    sl_ctable_forget(&t, "c");
    is_int(value_of(&t, "c"), 0, "shared: forget works on the mapping");
}

static void test_dead_holder(void)
{
    struct sl_ctable t = SL_CTABLE_INIT;
    char path[256], why[256] = "", c = 0;
    long long v = -1;
    int ready[2], st;
    pid_t pid;

    path_of(path, sizeof(path), "dead.shm");
    if (sl_ctable_map(&t, path, why, sizeof(why)) != SL_OK || pipe(ready) != 0) {
        ok(0, why);
        return;
    }
    (void)sl_ctable_add(&t, "d", 0, 5, 600, &v);
    if ((pid = fork()) == 0) {
        struct sl_ctable mine = SL_CTABLE_INIT;

        if (sl_ctable_map(&mine, path, why, sizeof(why)) != SL_OK || sl_ctable_lock(&mine) != 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        pause();                 /* holding the lock until killed */
        _exit(0);
    }
    close(ready[1]);
    ok(read(ready[0], &c, 1) == 1, "dead holder: the child holds the lock");
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "dead holder: killed with SIGKILL");
    alarm(10);                   /* a deadlock fails the test instead of hanging it */
    is_int(sl_ctable_add(&t, "d", 0, 1, 600, &v), 0, "dead holder: the next locker gets the lock");
    is_int(v, 6, "dead holder: the counter is intact");
    is_int(sl_ctable_add(&t, "d", 0, 1, 600, &v), 0, "dead holder: and again (made consistent)");
    alarm(0);
    close(ready[0]);
}

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd >= 0) {
        if (write(fd, data, n) != (ssize_t)n)
            perror("write");
        close(fd);
    }
}

static int has_magic(const char *path)
{
    char head[8] = "";
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, head, sizeof(head)) : -1;

    if (fd >= 0)
        close(fd);
    return n == 8 && memcmp(head, "sluiceCT", 8) == 0;
}

static void test_foreign(void)
{
    struct sl_ctable a = SL_CTABLE_INIT, b = SL_CTABLE_INIT, c = SL_CTABLE_INIT;
    char path[256], why[256] = "";
    struct stat st;
    size_t size;
    char *junk;
    long long v;

    /* a foreign file of the right size */
    path_of(path, sizeof(path), "foreign.shm");
    if (sl_ctable_map(&a, path, why, sizeof(why)) != SL_OK || stat(path, &st) != 0) {
        ok(0, why);
        return;
    }
    size = (size_t)st.st_size;
    (void)sl_ctable_add(&a, "x", 0, 42, 600, &v);
    if ((junk = malloc(size)) == NULL)
        return;
    memset(junk, 0x5a, size);
    unlink(path);                /* as another program would make it */
    write_file(path, junk, size);
    is_int(sl_ctable_map(&b, path, why, sizeof(why)), SL_OK, "foreign: a junk file is taken");
    ok(has_magic(path), "foreign: it was re-initialised");
    is_int(value_of(&b, "x"), 0, "foreign: none of its contents counts");
    is_int(value_of(&a, "x"), 42, "foreign: a process still on the old file keeps it");

    /* a short file, and an older version of ours */
    write_file(path, "hello", 5);
    is_int(sl_ctable_map(&c, path, why, sizeof(why)), SL_OK, "foreign: a short file is taken");
    ok(stat(path, &st) == 0 && (size_t)st.st_size == size, "foreign: and given the right size");
    (void)sl_ctable_add(&c, "y", 0, 7, 600, &v);
    {
        struct sl_ctable d = SL_CTABLE_INIT, e = SL_CTABLE_INIT;
        unsigned version = 0;
        int fd;

        is_int(sl_ctable_map(&d, path, why, sizeof(why)), SL_OK, "reuse: a valid file is mapped");
        is_int(value_of(&d, "y"), 7, "reuse: with its counters");
        fd = open(path, O_RDWR);
        if (fd >= 0) {
            if (pwrite(fd, &version, sizeof(version), 8) != (ssize_t)sizeof(version))
                perror("pwrite");
            close(fd);
        }
        is_int(sl_ctable_map(&e, path, why, sizeof(why)), SL_OK, "version: another version is taken");
        is_int(value_of(&e, "y"), 0, "version: and started afresh");
    }
    free(junk);
}

static void test_host(void)
{
    char tmp[256], path[300];
    struct sl_ctable *h;

    snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    mkdir(tmp, 0700);
    setenv("TMPDIR", tmp, 1);
    h = sl_ctable_host();
    ok(h != NULL && h->shared != NULL, "host: shared");
    ok(sl_ctable_host() == h, "host: one table per process");
    snprintf(path, sizeof(path), "%s/sluice-spend/counters.shm", tmp);
    ok(has_magic(path), "host: in the spool directory, counters.shm");
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char cmd[300];

    snprintf(dir, sizeof(dir), "%s/sl-ctable-XXXXXX", tmp != NULL && tmp[0] == '/' ? tmp : P_tmpdir);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_private();
    test_shared_counts();
    test_dead_holder();
    test_foreign();
    test_host();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tap_done();
}
