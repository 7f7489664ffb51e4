/* The libFuzzer entry points, shared by every fuzz program: the program's
 * name says which target it runs (tests/fuzz/fuzz_sse runs "sse"), so all of
 * them are the same objects linked under nine names (Makefile.am). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct sl_fuzz_target *target;   /* set once, before the first input */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *base = strrchr((*argv)[0], '/');

    base = base ? base + 1 : (*argv)[0];
    if (strncmp(base, "fuzz_", 5) != 0 || (target = sl_fuzz_find(base + 5)) == NULL) {
        fprintf(stderr, "%s: the program's name must be fuzz_<target>; targets:", base);
        for (const struct sl_fuzz_target *t = sl_fuzz_targets; t->name != NULL; t++)
            fprintf(stderr, " %s", t->name);
        fprintf(stderr, "\n");
        exit(2);
    }
    (void)argc;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return target->run(data, size);
}
