/* The member scanner against Jansson as the oracle: for every text Jansson
 * reads as an object, the scanner must find the same members with the same
 * values; texts that are structurally broken must be refused; and random
 * mutations of valid documents must never make it read out of bounds
 * (ASan/valgrind run this too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "jscan.h"
#include "tap.h"

struct collect {
    json_t *obj;     /* what the scanner found, rebuilt with Jansson */
    int bad;
};

static int add(void *ctx, const struct sl_jmember *m)
{
    struct collect *c = ctx;
    char *k = malloc(m->key_len + 3);
    json_t *key, *val;

    sprintf(k, "\"%.*s\"", (int)m->key_len, m->key);
    key = json_loads(k, JSON_DECODE_ANY, NULL);
    val = json_loadb(m->val, m->val_len, JSON_DECODE_ANY, NULL);
    free(k);
    if (!json_is_string(key) || val == NULL)
        c->bad = 1;
    else
        json_object_set(c->obj, json_string_value(key), val);
    json_decref(key);
    json_decref(val);
    return 0;
}

/* 1: agrees with Jansson (or Jansson rejects it and so does the scan, for
 * structural breakage), 0: disagrees. */
static int agrees(const char *text, size_t len, int *scanned_ok)
{
    json_t *want = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    struct collect c = { json_object(), 0 };
    int rc = sl_jscan_object(text, len, add, &c), res;

    *scanned_ok = rc == 0;
    if (json_is_object(want))
        res = rc == 0 && !c.bad && json_equal(want, c.obj);
    else
        res = 1;   /* the scan checks structure only; judged by the cases below */
    json_decref(want);
    json_decref(c.obj);
    return res;
}

static unsigned long long rng = 88172645463325252ULL;

static unsigned next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)rng;
}

int main(void)
{
    static const char *const good[] = {
        "{}", " { } ", "{\"a\":1}", "{\"a\" : 1 , \"b\":[1,2,{\"c\":\"}]\"}]}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"say \\\"hi\\\" {not json}\"}]}",
        "{\"s\":\"\\\\\",\"t\":\"\\u00e9\\ud83d\\ude00\",\"u\":\"\xc3\xa9\"}",
        "{\"n\":-1.5e+10,\"t\":true,\"f\":false,\"z\":null,\"e\":{},\"a\":[]}",
        "{\"nested\":{\"model\":\"inner\"},\"model\":\"outer\"}",
        "\n{\n  \"id\": \"chatcmpl-1\",\n  \"choices\": [ ]\n}\n",
        "{\"k\\\"q\":1}",
    };
    static const char *const broken[] = {
        "", "   ", "[]", "\"x\"", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}",
        "{\"a\":[1,2}", "{\"a\":{]}", "{\"a\":\"unterminated}", "{\"a\":1}x", "{\"a\":1}{}",
        "{\"a\":\"raw\ncontrol\"}", "{a:1}", "{\"a\":1", "{\"a\"::1}",
    };
    int all = 1, ok_scan;
    char deep[400];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char name[128];

        snprintf(name, sizeof(name), "good %zu: same members as Jansson", i);
        ok(agrees(good[i], strlen(good[i]), &ok_scan) && ok_scan, name);
    }
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        if (sl_jscan_object(broken[i], strlen(broken[i]), NULL, NULL) == 0) {
            printf("# accepted: %s\n", broken[i]);
            all = 0;
        }
    ok(all, "structurally broken texts are refused");

    memset(deep, 0, sizeof(deep));
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 200; i++)
        strcat(deep, "[");
    ok(sl_jscan_object(deep, strlen(deep), NULL, NULL) != 0, "deep nesting is refused, no overflow");

    {
        const char *t = "{\"a\":{\"finish_reason\" : \"stop\"},\"b\":\"\\\"finish_reason\\\":\\\"x\\\"\"}";
        const char *v = sl_jscan_find_key(t, strlen(t), "finish_reason");

        ok(v != NULL && *v == '"' && strncmp(v, "\"stop\"", 6) == 0, "find_key finds a nested key");
        t = "{\"b\":\"\\\"finish_reason\\\":\\\"x\\\"\"}";
        ok(sl_jscan_find_key(t, strlen(t), "finish_reason") == NULL, "find_key ignores escaped text");
        ok(sl_jscan_find_key("\"finish_reason\"", 15, "finish_reason") == NULL, "find_key needs a colon");
        ok(sl_jscan_find_key("{\"finish_reason\":", 17, "finish_reason") == NULL, "find_key needs a value");
    }

    /* Random mutations: flip, insert and delete bytes of the good texts. */
    all = 1;
    for (int round = 0; round < 30000 && all; round++) {
        const char *src = good[next() % (sizeof(good) / sizeof(good[0]))];
        size_t n = strlen(src), len = n;
        char *buf = malloc(n + 8);
        static const char alphabet[] = "{}[]\":,\\ ax1\n";

        memcpy(buf, src, n);
        for (int m = 0, k = 1 + (int)(next() % 3); m < k; m++) {
            size_t at = len ? next() % len : 0;
            char c = alphabet[next() % (sizeof(alphabet) - 1)];

            switch (next() % 3) {
            case 0: if (len) buf[at] = c; break;
            case 1: if (len < n + 8) { memmove(buf + at + 1, buf + at, len - at); buf[at] = c; len++; } break;
            default: if (len) { memmove(buf + at, buf + at + 1, len - at - 1); len--; } break;
            }
        }
        /* An exactly sized copy, so ASan sees any read past the end. */
        {
            char *exact = malloc(len ? len : 1);

            memcpy(exact, buf, len);
            if (!agrees(exact, len, &ok_scan)) {
                printf("# disagreement on: %.*s\n", (int)len, exact);
                all = 0;
            }
            free(exact);
        }
        free(buf);
    }
    ok(all, "30000 mutations: agrees with Jansson on every object it reads, no overreads");
    return tap_done();
}
