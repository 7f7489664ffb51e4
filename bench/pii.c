/* bench/pii.c — what the PII guardrail costs: the default detector set
 * (src/pii.c) on generated chat text (English, German, French and Japanese
 * prose, code, numbers, dates, now and then an address, a phone number or a
 * key). Prints scan throughput in MB/s on one core (target >= 200), the time
 * to mask a 4 KB prompt including its map (target <= 30 us), the streaming
 * scanner's throughput on 20-byte chunks, and restore. Built and run by
 * bench/pii.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "pii.h"
#include "status.h"

static const char *const prose[] = {
    "Could you summarise the attached report in three bullet points? ",
    "The quarterly numbers look better than expected, revenue grew by 12 percent. ",
    "Please rewrite this paragraph so that it sounds more friendly and less formal. ",
    "Ich brauche eine kurze Zusammenfassung des Protokolls vom 15.03.2024, bitte auf Deutsch. ",
    "Pourriez-vous traduire ce texte en anglais avant vendredi ? Merci beaucoup. ",
    "明日の会議は午後3時からです。資料を準備してください。 ",
    "Here is the function that fails: def parse(line): return line.split(',')[2] ",
    "for (int i = 0; i < n; i++) { total += price[i] * qty[i]; } ",
    "The build 1.14.2 fails on Ubuntu 22.04 with error code 137 after 45 minutes. ",
    "What is the difference between a mutex and a semaphore in practice? ",
    "Explain the output of `git log --oneline | head -20` for a beginner. ",
    "The user asked about order 48213 which shipped on 2024-03-15 at 14:30. ",
    "SELECT name, total FROM orders WHERE created_at > '2024-01-01' LIMIT 50; ",
    "Write a haiku about the sea, the wind and an old lighthouse keeper. ",
    "Kannst du mir helfen, eine höfliche Absage für das Angebot zu formulieren? ",
    "The model returned {\"status\": \"ok\", \"items\": 3, \"latency_ms\": 212}. ",
};

static const char *const pii[] = {
    "Contact me at jane.doe@example.com if anything is unclear. ",
    "My number is +49 30 12345678, call after 5 pm. ",
    "The server 192.168.10.24 keeps timing out. ",
    "Use key sk-Abc123Def456Ghi789Jkl012Mno345Pqr678 for the test account. ",
    "Transfer to DE89 3704 0044 0532 0130 00 please. ",
};

/* n bytes of chat text: about one PII value per 2 KB. */
static char *make_text(size_t n, unsigned seed)
{
    char *t = malloc(n + 256);
    size_t o = 0;

    if (t == NULL)
        return NULL;
    while (o < n) {
        const char *s = rand_r(&seed) % 32 == 0 ? pii[rand_r(&seed) % 5]
                                                : prose[rand_r(&seed) % (sizeof(prose) / sizeof(prose[0]))];
        size_t k = strlen(s);

        memcpy(t + o, s, k);
        o += k;
    }
    t[n] = '\0';
    /* do not end inside a UTF-8 character */
    while (n > 0 && ((unsigned char)t[n - 1] & 0xC0) == 0x80)
        t[--n] = '\0';
    if (n > 0 && (unsigned char)t[n - 1] >= 0xC0)
        t[--n] = '\0';
    return t;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t big = argc > 1 ? (size_t)atol(argv[1]) << 20 : 8u << 20;
    struct sl_pii_set *set = NULL;
    struct sl_arena *arena = sl_arena_create(256u << 20);
    char err[256];
    char *text = make_text(big, 1), *prompt = make_text(4096, 2);
    size_t plen = strlen(prompt), tlen = strlen(text), masked_n = 0;
    double best = 1e9, best4k = 1e9, bests = 1e9, bestr = 1e9;
    const char *out;
    size_t ol;
    int iters = 20000;

    if (text == NULL || prompt == NULL || arena == NULL ||
        sl_pii_compile(NULL, 0, &set, err, sizeof(err)) != SL_OK) {
        fprintf(stderr, "pii: set-up failed %s\n", err);
        return 1;
    }
    for (int run = 0; run < 5; run++) {
        struct sl_pii_report rep = { 0 };
        double t0 = now_s(), dt;

        if (sl_pii_scan(set, sl_pii_map_new(arena), arena, text, tlen, &out, &ol, &rep) != SL_OK)
            return 1;
        dt = now_s() - t0;
        masked_n = rep.masked;
        best = dt < best ? dt : best;
        sl_arena_reset(arena);
    }
    for (int run = 0; run < 5; run++) {
        double t0 = now_s(), dt;

        for (int i = 0; i < iters; i++) {
            struct sl_pii_map *map = sl_pii_map_new(arena);

            if (sl_pii_scan(set, map, arena, prompt, plen, &out, &ol, NULL) != SL_OK)
                return 1;
            sl_arena_reset(arena);
        }
        dt = (now_s() - t0) / iters;
        best4k = dt < best4k ? dt : best4k;
    }
    for (int run = 0; run < 3; run++) {
        struct sl_pii_stream *st = sl_pii_stream_new(set, sl_pii_map_new(arena), arena);
        double t0 = now_s(), dt;

        for (size_t o = 0; o < tlen; o += 20)
            if (sl_pii_stream_feed(st, text + o, tlen - o < 20 ? tlen - o : 20, &out, &ol, NULL) != SL_OK)
                return 1;
        sl_pii_stream_finish(st, &out, &ol, NULL);
        dt = now_s() - t0;
        bests = dt < bests ? dt : bests;
        sl_arena_reset(arena);
    }
    {
        struct sl_pii_map *map = sl_pii_map_new(arena);
        const char *masked;
        size_t mlen;

        sl_pii_scan(set, map, arena, text, tlen, &masked, &mlen, NULL);
        for (int run = 0; run < 5; run++) {
            double t0 = now_s(), dt;

            if (sl_pii_restore(map, arena, masked, mlen, &ol) == NULL)
                return 1;
            dt = now_s() - t0;
            bestr = dt < bestr ? dt : bestr;
        }
        sl_arena_reset(arena);
    }
    printf("PII detectors, default set (9 built-ins), generated chat text, one core:\n");
    printf("  scan, %zu MB in one text     %8.0f MB/s   (target >= 200; %zu values masked)\n",
           tlen >> 20, tlen / best / 1e6, masked_n);
    printf("  mask a 4 KB prompt (map incl.) %6.1f us    (target <= 30; %.0f MB/s)\n",
           best4k * 1e6, plen / best4k / 1e6);
    printf("  streaming, 20-byte chunks     %8.0f MB/s\n", tlen / bests / 1e6);
    printf("  restore                       %8.0f MB/s\n", tlen / bestr / 1e6);
    sl_pii_free(set);
    sl_arena_free(arena);
    free(text);
    free(prompt);
    return (tlen / best / 1e6 < 200 || best4k > 30e-6) ? 3 : 0;
}
