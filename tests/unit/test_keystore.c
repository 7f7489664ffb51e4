/* keystore.c's pure parts: durations (expires, budget_duration), the ISO
 * 8601 times of key objects, and which token a key or token names. The SQL
 * is tested against MariaDB in tests/integration/gateway-admin.test.mjs. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "keystore.h"
#include "status.h"
#include "tap.h"

/* 2026-01-31T12:00:00.5Z */
#define T0 (1769860800LL * 1000000 + 500000)

static void durations(void)
{
    static const struct { const char *s; long long add_s; } good[] = {
        { "30s", 30 }, { "0s", 0 }, { "30m", 1800 }, { "1h", 3600 }, { "1d", 86400 },
        { "30d", 30 * 86400 }, { "2w", 14 * 86400 },
    };
    static const char *const bad[] = {
        "", "s", "1", "1y", "1 d", " 1d", "1d ", "-1d", "+1d", "1.5h", "1D", "1mon", "d1",
        "99999999999999d", "1s'; DROP TABLE x; --", "0x10s", "2401mo",
    };
    long long t = 0;
    char iso[40];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ok(sl_keystore_add_duration(good[i].s, T0, &t) == SL_OK, good[i].s);
        is_int(t, T0 + good[i].add_s * 1000000, good[i].s);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(sl_keystore_add_duration(bad[i], T0, &t), SL_ERR_BAD_REQUEST, bad[i]);
    is_int(sl_keystore_add_duration(NULL, T0, &t), SL_ERR_BAD_REQUEST, "NULL");
    /* months are calendar months: Jan 31 + 1 month runs over into March */
    ok(sl_keystore_add_duration("1mo", 1767225600LL * 1000000, &t) == SL_OK, "1mo");
    sl_keystore_iso_time(t, iso);
    is_str(iso, "2026-02-01T00:00:00Z", "2026-01-01 + 1mo");
    ok(sl_keystore_add_duration("12mo", 1767225600LL * 1000000, &t) == SL_OK, "12mo");
    sl_keystore_iso_time(t, iso);
    is_str(iso, "2027-01-01T00:00:00Z", "2026-01-01 + 12mo");
}

static void times(void)
{
    char iso[40];

    sl_keystore_iso_time(T0, iso);
    is_str(iso, "2026-01-31T12:00:00.500000Z", "fraction kept");
    sl_keystore_iso_time(1769860800LL * 1000000, iso);
    is_str(iso, "2026-01-31T12:00:00Z", "no fraction when zero");
    sl_keystore_iso_time(0, iso);
    is_str(iso, "1970-01-01T00:00:00Z", "epoch");
}

static void tokens(void)
{
    char tok[65], want[65];

    sl_keystore_token_of("sk-1234", tok);
    sl_auth_hash_key("sk-1234", want);
    is_str(tok, want, "a raw key is hashed");
    is_str(tok, "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", "sha256 hex of the whole key, sk- included");
    sl_keystore_token_of("88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b", tok);
    is_str(tok, "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
           "a token is taken as it is");
    sl_keystore_token_of("not-a-key", tok);
    is_str(tok, "not-a-key", "anything else too (LiteLLM's rule); it simply matches no row");
}

int main(void)
{
    durations();
    times();
    tokens();
    return tap_done();
}
