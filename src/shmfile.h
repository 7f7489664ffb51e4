/* A file shared by the sluice processes of a host, mapped read-write by
 * each of them: the host's counter table (ctable.c) and its metrics
 * (metrics.c). Whoever comes first makes it; a file that is not what the
 * caller expects (another layout, version or size, a maker that died
 * before finishing) is replaced by a new one, while processes that still
 * map the old one keep it. Processes starting together agree through an
 * flock of path.lock. */
#ifndef SL_SHMFILE_H
#define SL_SHMFILE_H

#include <stddef.h>

/* valid(p, arg): whether the mapping p of an existing file of the right
 * size is usable as it is. init(p, arg): fills a new, zeroed mapping;
 * 0, or an errno value. Returns the mapping (size bytes, MAP_SHARED), or
 * NULL with why set. */
void *sl_shm_map(const char *path, size_t size, int (*valid)(const void *p, void *arg),
                 int (*init)(void *p, void *arg), void *arg, char *why, size_t whylen);

#endif
