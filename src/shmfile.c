/* Shared files of the host's processes (see shmfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmfile.h"

#define PATH_MAX_LEN 4096

static void *map_fd(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* Under the flock: the valid mapping of path, or a new file in its place. */
static void *open_locked(const char *path, size_t size, int (*valid)(const void *, void *),
                         int (*init)(void *, void *), void *arg, char *why, size_t whylen)
{
    void *p = NULL;
    struct stat st;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == size &&
        (p = map_fd(fd, size)) != NULL && !valid(p, arg)) {
        munmap(p, size);
        p = NULL;
    }
    if (fd >= 0)
        close(fd);
    if (p != NULL)
        return p;
    /* a new file: never shrink or rewrite one that others may still map */
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(why, whylen, "cannot replace %s: %s", path, strerror(errno));
        return NULL;
    }
    if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        snprintf(why, whylen, "cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    if (ftruncate(fd, (off_t)size) != 0 || (p = map_fd(fd, size)) == NULL) {
        snprintf(why, whylen, "cannot size or map %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    close(fd);
    if ((errno = init(p, arg)) != 0) {
        snprintf(why, whylen, "cannot initialise %s: %s", path, strerror(errno));
        munmap(p, size);
        return NULL;
    }
    return p;
}

void *sl_shm_map(const char *path, size_t size, int (*valid)(const void *p, void *arg),
                 int (*init)(void *p, void *arg), void *arg, char *why, size_t whylen)
{
    char lockpath[PATH_MAX_LEN + 8];
    void *p;
    int lfd;

    if (strlen(path) > PATH_MAX_LEN) {
        snprintf(why, whylen, "the path %.64s... is too long", path);
        return NULL;
    }
    snprintf(lockpath, sizeof(lockpath), "%s.lock", path);
    if ((lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        snprintf(why, whylen, "cannot open %s: %s", lockpath, strerror(errno));
        return NULL;
    }
    while (flock(lfd, LOCK_EX) != 0 && errno == EINTR)
        ;
    p = open_locked(path, size, valid, init, arg, why, whylen);
    close(lfd);                  /* releases the flock */
    return p;
}
