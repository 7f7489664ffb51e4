/* Fuzz targets: the three stream framers and every response parser, each a
 * function of one input. The same functions run under libFuzzer (entry.c,
 * built with --enable-fuzzing) and in the unit tests
 * (tests/unit/test_fuzz_replay.c replays tests/fuzz/corpus/ and
 * tests/fuzz/regressions/ with whatever compiler built the tree).
 *
 * A target aborts (sl_fuzz_fail) when an invariant breaks; a crash in the
 * code under test is found by the sanitizers, or by the replay dying. */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "provider.h"

struct sl_fuzz_target {
    const char *name;          /* "sse", "anthropic", ...: also tests/fuzz/corpus/<name>/ */
    int (*run)(const uint8_t *data, size_t size);
};

/* NULL-terminated, in the order run.sh runs them (targets.c). */
extern const struct sl_fuzz_target sl_fuzz_targets[];

/* The target called name, or NULL. */
const struct sl_fuzz_target *sl_fuzz_find(const char *name);

/* Stream framers (fuzz_framer.c). The input carries its own feeding plan:
 *   byte 0   bits 0-2: k, how many chunk-size bytes follow (0: one feed)
 *            bit 3: a stop byte follows: the callback fails at that event
 *            bit 4: a cap byte c follows: the framer's line and data buffers
 *                   are capped at 16 * (c + 1) bytes, so the cap is reachable
 *   then the k sizes (used in turn, over and over), the stop byte, the cap
 *   byte, and the rest is the stream. */
int sl_fuzz_framer(enum sl_framing kind, const uint8_t *data, size_t size);

/* A provider family's response parsers (fuzz_adapter.c): the input is an
 * upstream reply, given to parse_response as a whole body, to map_error as
 * an error body, and to the adapter's own framer, whose events go to
 * parse_stream_event, for each of the family's fixed client requests (built
 * with build_request first, so the adapter's state is what it is for real). */
int sl_fuzz_adapter(const char *family, const uint8_t *data, size_t size);

/* An invariant broke: prints what, calls the hook if one is set (it must
 * not return: the replay test longjmps out to report the input and go on),
 * and aborts, which libFuzzer reports as a crash. */
void sl_fuzz_fail(const char *what) __attribute__((noreturn));
extern void (*sl_fuzz_fail_hook)(const char *what);

#endif
