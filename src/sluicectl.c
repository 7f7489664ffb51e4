/* sluicectl: the command-line admin for hosts where the management API is
 * not exposed. It reads the same config.yaml as sluice (same default path
 * rules) and talks to the same MariaDB through db.c. Commands so far:
 *   migrate  apply the pending schema migrations (migrate.c)
 *   status   is the database reachable, which schema version, what is pending
 *   key ...  create, list, show, block, unblock and delete virtual keys (the
 *            rows are keystore.c's, shared with the management API)
 *   team ..., user ...  create and list teams and users (teamstore.c)
 *   import-litellm  load a LiteLLM Postgres export (CSV or JSON) into the
 *            same tables, keys keeping their tokens (import.c)
 * Exit codes are listed in usage() and docs/database.md. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "import.h"
#include "keystore.h"
#include "log.h"
#include "migrate.h"
#include "spendstore.h"
#include "status.h"
#include "teamstore.h"

enum {
    EXIT_OK = 0,
    EXIT_DB = 1,          /* the database is unreachable, refused us, or a statement failed */
    EXIT_USAGE = 2,
    EXIT_CONFIG = 3,      /* the config, the database_url or the schema directory */
    EXIT_CHANGED = 4,     /* an applied migration's file changed since */
    EXIT_PENDING = 5,     /* status: migrations are waiting to be applied */
    EXIT_NOT_FOUND = 6    /* key: no such key; user create --team: no such team */
};

#define APPLIED_BY "sluicectl " PACKAGE_VERSION
#define LOCK_WAIT_S 30

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sluicectl [--config FILE] [--schema-dir DIR] migrate\n"
        "       sluicectl [--config FILE] [--schema-dir DIR] status\n"
        "       sluicectl [--config FILE] key create [--alias A] [--models m1,m2] [--max-budget X]\n"
        "                 [--duration D] [--user U] [--team T]\n"
        "       sluicectl [--config FILE] key list\n"
        "       sluicectl [--config FILE] key update KEY_OR_TOKEN [--alias A] [--models m1,m2]\n"
        "                 [--max-budget X] [--budget-duration D] [--spend X] [--duration D]\n"
        "                 [--user U] [--team T]\n"
        "       sluicectl [--config FILE] key info|block|unblock|delete KEY_OR_TOKEN\n"
        "       sluicectl [--config FILE] team create [--id ID] [--alias A] [--models m1,m2]\n"
        "                 [--max-budget X]\n"
        "       sluicectl [--config FILE] team list\n"
        "       sluicectl [--config FILE] user create [--id ID] [--email E] [--role R]\n"
        "                 [--models m1,m2] [--max-budget X] [--team T]\n"
        "       sluicectl [--config FILE] user list\n"
        "       sluicectl [--config FILE] spend report [--group-by team|customer|api_key|model]\n"
        "                 [--start YYYY-MM-DD] [--end YYYY-MM-DD]\n"
        "       sluicectl [--config FILE] import-litellm [--table T] [--dry-run] FILE\n"
        "       sluicectl --version | --help\n"
        "\n"
        "  migrate  apply the pending MariaDB migrations, in order; nothing to do is a success\n"
        "  status   whether the database is reachable, its schema version, what is pending\n"
        "  key      virtual keys: create prints the new key once (only its SHA-256, the token,\n"
        "           is stored); the others take the key (sk-...) or its token. D is a\n"
        "           duration such as 30s, 1h, 1d, 30d, 1mo\n"
        "  team     teams: create prints the team id (generated when --id is not given)\n"
        "  user     users: create prints the user id; it makes no key (use key create --user)\n"
        "  spend    spend per day and team (customer, key, model) from the daily aggregates,\n"
        "           the last 30 days unless --start/--end say otherwise\n"
        "  import-litellm  load one table exported from LiteLLM's Postgres (psql \\copy ... CSV\n"
        "           HEADER, or json_agg/row_to_json; FILE - is stdin) in one transaction;\n"
        "           rows are upserted, keys keep working. T: budgets, teams, users,\n"
        "           memberships or keys (default: guessed from the columns). See\n"
        "           docs/database.md, \"Importing from LiteLLM\"\n"
        "\n"
        "The config is --config, else $SLUICE_CONFIG, else %s/sluice/config.yaml; the\n"
        "database is its general_settings.database_url, else $DATABASE_URL. The migrations\n"
        "are read from --schema-dir, else $SLUICE_SCHEMA_DIR, else %s\n"
        "(the source tree's schema/ when this sluicectl is not the installed one).\n"
        "\n"
        "Exit status: 0 done (status: up to date), 1 database error, 2 usage,\n"
        "3 configuration or schema directory error, 4 an applied migration was changed,\n"
        "5 (status) migrations are pending, 6 (key, team, user) no such key or team.\n"
        "import-litellm: 2 also for a file that cannot be read or a row that is wrong\n"
        "(the message names the row and column; nothing is imported).\n",
        SL_SYSCONFDIR, SL_SCHEMADIR);
}

static int is_dir(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Installed (this program lives in $(bindir)): $(pkgdatadir)/schema. Run
 * from a build tree: the source tree's schema/, else ./schema. */
static const char *default_schema_dir(void)
{
    char exe[PATH_MAX], bindir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n > 0) {
        exe[n] = '\0';
        if (realpath(SL_BINDIR, bindir) != NULL && strcmp(dirname(exe), bindir) == 0)
            return SL_SCHEMADIR;
    }
    if (is_dir(SL_SRC_SCHEMADIR))
        return SL_SRC_SCHEMADIR;
    return is_dir("schema") ? "schema" : SL_SCHEMADIR;
}

/* Prints the config's lines about the database (why database_url may have
 * been dropped); the other warnings are sluice's business, not ours. */
static void print_db_lines(const struct sl_buf *msgs, int errors_too)
{
    const char *p = msgs->len > 0 ? msgs->data : "";

    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        int is_error = memmem(p, n, ": error: ", 9) != NULL;
        int about_db = memmem(p, n, "database_url", 12) != NULL ||
                       memmem(p, n, "DATABASE_URL", 12) != NULL;

        if ((errors_too && is_error) || about_db)
            fprintf(stderr, "%.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static struct sl_config *load_config(const char *path)
{
    struct sl_config *cfg = NULL;
    struct sl_buf msgs;
    int rc;

    sl_buf_init(&msgs, 1u << 20);
    rc = sl_config_load(path, &cfg, &msgs);
    if (rc != SL_OK) {
        print_db_lines(&msgs, 1);
        fprintf(stderr, "sluicectl: %s: %s\n", path,
                rc == SL_ERR_NOMEM ? "out of memory" : "the configuration has errors (see above; "
                "sluice --check-config shows every message)");
    } else if (cfg->database_url == NULL) {
        print_db_lines(&msgs, 0);
        fprintf(stderr, "sluicectl: no database configured in %s: set "
                "general_settings.database_url (mysql://user:password@host:port/database) "
                "or $DATABASE_URL\n", path);
        sl_config_unref(cfg);
        cfg = NULL;
    }
    sl_buf_free(&msgs);
    return cfg;
}

/* What to do about each kind of connection failure. */
static const char *hint(int kind)
{
    switch (kind) {
    case SL_DB_ERR_UNAVAILABLE:
        return "is the server running, and reachable at that host and port (or socket)?";
    case SL_DB_ERR_DENIED:
        return "check the user, password and database in database_url, and the user's grants "
               "(GRANT ALL ON database.* TO 'user'@'host')";
    case SL_DB_ERR_UNCONFIGURED:
        return "fix general_settings.database_url";
    default:
        return NULL;
    }
}

static void print_db_error(const char *what, const struct sl_db_error *e)
{
    const char *h = hint(e->kind);

    fprintf(stderr, "sluicectl: %s: %s\n", what, e->message);
    if (h != NULL)
        fprintf(stderr, "sluicectl: %s\n", h);
}

static int scan(const char *dir, struct sl_migrations *m)
{
    struct sl_buf msgs;
    int rc;

    sl_buf_init(&msgs, 1u << 20);
    rc = sl_migrate_scan(dir, m, &msgs);
    if (rc != SL_OK) {
        if (msgs.len > 0)
            fputs(msgs.data, stderr);
        fprintf(stderr, "sluicectl: schema directory %s: %s\n", dir,
                rc == SL_ERR_NOMEM ? "out of memory" : "not usable (see above)");
    }
    sl_buf_free(&msgs);
    return rc;
}

static void report_changed(const struct sl_migrate_plan *p)
{
    for (size_t i = 0; i < p->n_changed; i++)
        fprintf(stderr, "sluicectl: %s was changed after it was applied: a released migration "
                "must never change; restore the file as it was, and put the change in a new "
                "migration\n", p->changed[i]->name);
}

static void report_unknown(const struct sl_migrate_plan *p)
{
    for (size_t i = 0; i < p->n_unknown; i++)
        fprintf(stderr, "sluicectl: warning: the database has migration %03u, which this schema "
                "directory does not: the database is newer than this sluicectl\n", p->unknown[i]);
}

static int apply_pending(struct sl_db *db, const struct sl_migrate_plan *p)
{
    for (size_t i = 0; i < p->n_pending; i++) {
        const struct sl_migration *m = p->pending[i];
        unsigned statements = 0;
        long ms = 0;

        if (sl_migrate_apply(db, m, APPLIED_BY, &statements, &ms) != SL_OK) {
            fprintf(stderr, "sluicectl: %s failed after %u statement(s): %s\n", m->name, statements,
                    sl_db_last_error(db)->message);
            fprintf(stderr, "sluicectl: it is not recorded as applied; fix the cause and run "
                    "migrate again (its statements can run again)\n");
            return EXIT_DB;
        }
        printf("applied %s (%u statement%s, %ld ms)\n", m->name, statements,
               statements == 1 ? "" : "s", ms);
        fflush(stdout);
    }
    return EXIT_OK;
}

static int cmd_migrate(const struct sl_config *cfg, const char *dir)
{
    struct sl_db_settings s;
    struct sl_db_error err;
    struct sl_migrations m = { NULL, 0 };
    struct sl_migrate_plan p;
    struct sl_db *db = NULL;
    int rc = EXIT_CONFIG, locked = 0, unsupported = 0, st;

    memset(&p, 0, sizeof(p));
    if (scan(dir, &m) != SL_OK)
        goto out;
    sl_db_settings_from_config(cfg, &s);
    rc = EXIT_DB;
    if (sl_db_open(&s, SL_DB_MULTI_STATEMENTS, &db, &err) != SL_OK) {
        print_db_error("cannot migrate", &err);
        goto out;
    }
    if ((st = sl_migrate_lock(db, LOCK_WAIT_S, &unsupported)) != SL_OK) {
        if (st == SL_ERR_BUSY)
            fprintf(stderr, "sluicectl: another sluicectl migrate holds the lock (waited %d s)\n",
                    LOCK_WAIT_S);
        else
            print_db_error("cannot take the migration lock", sl_db_last_error(db));
        goto out;
    }
    locked = !unsupported;
    if (unsupported)
        fprintf(stderr, "sluicectl: warning: no GET_LOCK on this server: run one migrate "
                "at a time\n");
    if (sl_migrate_init_table(db) != SL_OK || sl_migrate_plan(db, &m, &p) != SL_OK) {
        print_db_error("cannot read the applied migrations", sl_db_last_error(db));
        goto out;
    }
    report_unknown(&p);
    if (p.n_changed > 0) {
        report_changed(&p);
        rc = EXIT_CHANGED;
        goto out;
    }
    if (p.n_pending == 0) {
        printf("nothing to do: schema version %u is current (%s)\n", p.version,
               cfg->database_url_masked);
        rc = EXIT_OK;
        goto out;
    }
    if ((rc = apply_pending(db, &p)) == EXIT_OK)
        printf("schema version %u (%zu migration%s applied)\n",
               p.pending[p.n_pending - 1]->version > p.version ? p.pending[p.n_pending - 1]->version
                                                              : p.version,
               p.n_pending, p.n_pending == 1 ? "" : "s");
out:
    if (locked)
        sl_migrate_unlock(db);
    sl_migrate_plan_free(&p);
    sl_migrate_free(&m);
    sl_db_close(db);
    return rc;
}

static void print_list(const char *label, const struct sl_migration *const *v, size_t n)
{
    printf("%-16s", label);
    if (n == 0)
        printf("none");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", v[i]->name);
    printf("\n");
}

static int cmd_status(const struct sl_config *cfg, const char *dir)
{
    struct sl_db_settings s;
    struct sl_db_error err;
    struct sl_migrations m = { NULL, 0 };
    struct sl_migrate_plan p;
    struct sl_db *db = NULL;
    int rc = EXIT_CONFIG;

    memset(&p, 0, sizeof(p));
    if (scan(dir, &m) != SL_OK)
        goto out;
    sl_db_settings_from_config(cfg, &s);
    rc = EXIT_DB;
    if (sl_db_open(&s, 0, &db, &err) != SL_OK) {
        printf("%-16s%s: %s\n", "database:", cfg->database_url_masked,
               err.kind == SL_DB_ERR_DENIED ? "access denied" : "unreachable");
        print_db_error("database", &err);
        goto out;
    }
    printf("%-16s%s (MariaDB %s)\n", "database:", cfg->database_url_masked,
           sl_db_server_version(db));
    printf("%-16s%s (%zu migration%s)\n", "schema dir:", dir, m.n, m.n == 1 ? "" : "s");
    if (sl_migrate_plan(db, &m, &p) != SL_OK) {
        print_db_error("cannot read the applied migrations", sl_db_last_error(db));
        goto out;
    }
    printf("%-16s%u (%zu applied)\n", "schema version:", p.version, p.n_applied);
    print_list("pending:", p.pending, p.n_pending);
    if (p.n_changed > 0)
        print_list("changed:", p.changed, p.n_changed);
    report_unknown(&p);
    report_changed(&p);
    rc = p.n_changed > 0 ? EXIT_CHANGED : p.n_pending > 0 ? EXIT_PENDING : EXIT_OK;
out:
    sl_migrate_plan_free(&p);
    sl_migrate_free(&m);
    sl_db_close(db);
    return rc;
}

/* ---- key: virtual keys through keystore.c -------------------------------- */

#define CTL_ACTOR "sluicectl"

static int key_exit(const struct sl_keystore_err *err)
{
    fprintf(stderr, "sluicectl: %s\n", err->msg);
    switch (err->status) {
    case SL_ERR_BAD_REQUEST: return EXIT_USAGE;
    case SL_ERR_NOT_FOUND: return EXIT_NOT_FOUND;
    default: return EXIT_DB;
    }
}

static const char *str_or(const json_t *o, const char *name, const char *def)
{
    const char *s = json_string_value(json_object_get(o, name));

    return s != NULL ? s : def;
}

/* A money option's value, or -1 after printing why. */
static double money_arg(const char *name, const char *v)
{
    char *end;
    double d = strtod(v, &end);

    if (*v == '\0' || *end != '\0' || !(d >= 0)) {
        fprintf(stderr, "sluicectl: --%s must be a number of USD >= 0, not '%s'\n", name, v);
        return -1;
    }
    return d;
}

/* --models a,b,c as a JSON array (new reference), or NULL on OOM. */
static json_t *models_arg(const char *v)
{
    json_t *models = json_array();
    char *list = strdup(v), *tok, *save = NULL;

    if (models == NULL || list == NULL) {
        json_decref(models);
        free(list);
        return NULL;
    }
    for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(models, json_string(tok));
    free(list);
    return models;
}

/* key create's and key update's options into a /key/generate or
 * /key/update body (new reference), or NULL after printing why. */
static json_t *key_body(const char *sub, int argc, char **argv)
{
    static const struct option opts[] = {
        { "alias", required_argument, NULL, 'a' },
        { "models", required_argument, NULL, 'm' },
        { "max-budget", required_argument, NULL, 'b' },
        { "budget-duration", required_argument, NULL, 'B' },
        { "spend", required_argument, NULL, 's' },
        { "duration", required_argument, NULL, 'd' },
        { "user", required_argument, NULL, 'u' },
        { "team", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    json_t *body = json_object(), *models;
    double d;
    int c;

    if (body == NULL)
        return NULL;
    optind = 0;     /* glibc: start over on the sub-command's own argv */
    while ((c = getopt_long(argc, argv, "a:m:b:B:s:d:u:t:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': json_object_set_new(body, "key_alias", json_string(optarg)); break;
        case 'd': json_object_set_new(body, "duration", json_string(optarg)); break;
        case 'B': json_object_set_new(body, "budget_duration", json_string(optarg)); break;
        case 'u': json_object_set_new(body, "user_id", json_string(optarg)); break;
        case 't': json_object_set_new(body, "team_id", json_string(optarg)); break;
        case 'b':
        case 's':
            if ((d = money_arg(c == 'b' ? "max-budget" : "spend", optarg)) < 0)
                goto bad;
            json_object_set_new(body, c == 'b' ? "max_budget" : "spend", json_real(d));
            break;
        case 'm':
            if ((models = models_arg(optarg)) == NULL)
                goto bad;
            json_object_set_new(body, "models", models);
            break;
        default:
            goto bad;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "sluicectl: key %s: unexpected argument '%s'\n", sub, argv[optind]);
        goto bad;
    }
    return body;
bad:
    json_decref(body);
    return NULL;
}

static int key_create(struct sl_db *db, const struct sl_config *cfg, int argc, char **argv)
{
    struct sl_keystore_err err;
    json_t *body = key_body("create", argc, argv), *out = NULL;
    int rc;

    if (body == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    rc = sl_keystore_generate(db, cfg, body, CTL_ACTOR, &out, &err);
    json_decref(body);
    if (rc != SL_OK)
        return key_exit(&err);
    printf("key: %s\ntoken: %s\nkey_name: %s\nkey_alias: %s\nexpires: %s\n",
           str_or(out, "key", ""), str_or(out, "token", ""), str_or(out, "key_name", ""),
           str_or(out, "key_alias", "-"), str_or(out, "expires", "never"));
    fprintf(stderr, "sluicectl: the key is shown this once: only its token is stored\n");
    json_decref(out);
    return EXIT_OK;
}

/* key update KEY_OR_TOKEN [options]: /key/update. */
static int key_update(struct sl_db *db, const struct sl_config *cfg, int argc, char **argv)
{
    struct sl_keystore_err err;
    json_t *body = key_body("update", argc - 1, argv + 1), *out = NULL;
    char token[65], *text;
    int rc;

    if (body == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sl_keystore_token_of(argv[1], token);
    json_object_set_new(body, "key", json_string(token));
    rc = sl_keystore_update(db, cfg, body, CTL_ACTOR, &out, &err);
    json_decref(body);
    if (rc != SL_OK)
        return key_exit(&err);
    text = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", text ? text : "");
    free(text);
    json_decref(out);
    return EXIT_OK;
}

static int key_list(struct sl_db *db)
{
    struct sl_keystore_filter f = { NULL, NULL, NULL, 1, 100, 1 };
    struct sl_keystore_err err;
    json_t *out = NULL;
    long pages = 1;

    printf("token\tkey_name\tkey_alias\tuser_id\tteam_id\tblocked\tspend\tmax_budget\texpires\n");
    for (; f.page <= pages; f.page++) {
        const json_t *keys, *k;
        size_t i;

        if (sl_keystore_list(db, &f, &out, &err) != SL_OK)
            return key_exit(&err);
        pages = (long)json_integer_value(json_object_get(out, "total_pages"));
        keys = json_object_get(out, "keys");
        json_array_foreach(keys, i, k) {
            const json_t *mb = json_object_get(k, "max_budget");
            char budget[32] = "-";

            if (json_is_number(mb))
                snprintf(budget, sizeof(budget), "%g", json_number_value(mb));
            printf("%s\t%s\t%s\t%s\t%s\t%s\t%g\t%s\t%s\n", str_or(k, "token", ""),
                   str_or(k, "key_name", "-"), str_or(k, "key_alias", "-"),
                   str_or(k, "user_id", "-"), str_or(k, "team_id", "-"),
                   json_is_true(json_object_get(k, "blocked")) ? "yes" : "no",
                   json_number_value(json_object_get(k, "spend")), budget,
                   str_or(k, "expires", "never"));
        }
        json_decref(out);
    }
    return EXIT_OK;
}

/* info, block, unblock, delete of one key or token. */
static int key_one(struct sl_db *db, const struct sl_config *cfg, const char *sub,
                   const char *key)
{
    struct sl_keystore_err err;
    json_t *out = NULL, *body;
    char token[65], *text;
    int rc;

    sl_keystore_token_of(key, token);
    if (strcmp(sub, "info") == 0) {
        rc = sl_keystore_get(db, token, &out, &err);
    } else if (strcmp(sub, "block") == 0 || strcmp(sub, "unblock") == 0) {
        rc = sl_keystore_set_blocked(db, cfg, token, sub[0] == 'b', &out, &err);
    } else {
        body = json_pack("{s:[s]}", "keys", token);
        rc = body ? sl_keystore_delete(db, cfg, body, &out, &err) : SL_ERR_NOMEM;
        json_decref(body);
        if (rc == SL_ERR_NOMEM && body == NULL)
            snprintf(err.msg, sizeof(err.msg), "out of memory");
    }
    if (rc != SL_OK)
        return key_exit(&err);
    if (strcmp(sub, "info") == 0) {
        text = json_dumps(out, JSON_INDENT(2));
        printf("%s\n", text ? text : "");
        free(text);
    } else {
        printf("%s %s\n", strcmp(sub, "delete") == 0 ? "deleted" : sub[0] == 'b' ? "blocked"
                                                                              : "unblocked", token);
    }
    json_decref(out);
    return EXIT_OK;
}

static int cmd_key(const struct sl_config *cfg, int argc, char **argv)
{
    struct sl_db_settings s;
    struct sl_db_error err;
    struct sl_db *db = NULL;
    const char *sub = argc > 0 ? argv[0] : "";
    int rc;

    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
        !(strcmp(sub, "update") == 0 && argc >= 2 && argv[1][0] != '-') &&
        !((strcmp(sub, "info") == 0 || strcmp(sub, "block") == 0 ||
           strcmp(sub, "unblock") == 0 || strcmp(sub, "delete") == 0) && argc == 2)) {
        fprintf(stderr, "sluicectl: key: expected create, list, update KEY_OR_TOKEN [options], "
                "or info|block|unblock|delete KEY_OR_TOKEN\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(sub, "list") == 0 && argc != 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sl_db_settings_from_config(cfg, &s);
    if (sl_db_open(&s, 0, &db, &err) != SL_OK) {
        print_db_error("key", &err);
        return EXIT_DB;
    }
    if (strcmp(sub, "create") == 0)
        rc = key_create(db, cfg, argc, argv);
    else if (strcmp(sub, "update") == 0)
        rc = key_update(db, cfg, argc, argv);
    else if (strcmp(sub, "list") == 0)
        rc = key_list(db);
    else
        rc = key_one(db, cfg, sub, argv[1]);
    sl_db_close(db);
    return rc;
}

/* ---- team, user: through teamstore.c ------------------------------------ */

/* team/user create's options into a /team/new or /user/new body (new
 * reference), or NULL after printing why. */
static json_t *team_user_body(const char *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "id", required_argument, NULL, 'i' },
        { "alias", required_argument, NULL, 'a' },
        { "email", required_argument, NULL, 'e' },
        { "role", required_argument, NULL, 'r' },
        { "models", required_argument, NULL, 'm' },
        { "max-budget", required_argument, NULL, 'b' },
        { "team", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    int team = strcmp(cmd, "team") == 0, c;
    json_t *body = json_object(), *models;
    double d;

    if (body == NULL)
        return NULL;
    if (!team)
        json_object_set_new(body, "auto_create_key", json_false());
    optind = 0;
    while ((c = getopt_long(argc, argv, "i:a:e:r:m:b:t:", opts, NULL)) != -1) {
        if ((team && (c == 'e' || c == 'r' || c == 't')) || (!team && c == 'a'))
            c = '?';
        switch (c) {
        case 'i':
            json_object_set_new(body, team ? "team_id" : "user_id", json_string(optarg));
            break;
        case 'a': json_object_set_new(body, "team_alias", json_string(optarg)); break;
        case 'e': json_object_set_new(body, "user_email", json_string(optarg)); break;
        case 'r': json_object_set_new(body, "user_role", json_string(optarg)); break;
        case 't': json_object_set_new(body, "teams", json_pack("[s]", optarg)); break;
        case 'b':
            if ((d = money_arg("max-budget", optarg)) < 0)
                goto bad;
            json_object_set_new(body, "max_budget", json_real(d));
            break;
        case 'm':
            if ((models = models_arg(optarg)) == NULL)
                goto bad;
            json_object_set_new(body, "models", models);
            break;
        default:
            fprintf(stderr, "sluicectl: %s create: unknown option\n", cmd);
            goto bad;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "sluicectl: %s create: unexpected argument '%s'\n", cmd, argv[optind]);
        goto bad;
    }
    return body;
bad:
    json_decref(body);
    return NULL;
}

static void print_rows(const json_t *list, const char *const *names, size_t n)
{
    const json_t *o;
    size_t i;

    for (size_t k = 0; k < n; k++)
        printf("%s%s", k ? "\t" : "", names[k]);
    printf("\n");
    json_array_foreach(list, i, o) {
        for (size_t k = 0; k < n; k++) {
            const json_t *v = json_object_get(o, names[k]);
            char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

            printf("%s%s", k ? "\t" : "", json_is_string(v) ? json_string_value(v)
                                          : json_is_null(v) || text == NULL ? "-" : text);
            free(text);
        }
        printf("\n");
    }
}

static int cmd_team_user(const struct sl_config *cfg, const char *cmd, int argc, char **argv)
{
    static const char *const team_cols[] = { "team_id", "team_alias", "models", "max_budget",
                                             "spend", "blocked", "members_with_roles" };
    static const char *const user_cols[] = { "user_id", "user_email", "user_role", "models",
                                             "max_budget", "spend", "teams" };
    struct sl_db_settings s;
    struct sl_db_error dberr;
    struct sl_keystore_err err;
    struct sl_db *db = NULL;
    const char *sub = argc > 0 ? argv[0] : "";
    int team = strcmp(cmd, "team") == 0, rc = SL_OK;
    json_t *body = NULL, *out = NULL;

    if (!(strcmp(sub, "create") == 0 || (strcmp(sub, "list") == 0 && argc == 1))) {
        fprintf(stderr, "sluicectl: %s: expected create or list\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(sub, "create") == 0 && (body = team_user_body(cmd, argc, argv)) == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sl_db_settings_from_config(cfg, &s);
    if (sl_db_open(&s, 0, &db, &dberr) != SL_OK) {
        print_db_error(cmd, &dberr);
        json_decref(body);
        return EXIT_DB;
    }
    if (body != NULL)
        rc = team ? sl_teamstore_team_new(db, body, &out, &err)
                  : sl_teamstore_user_new(db, cfg, body, CTL_ACTOR, &out, &err);
    else if (team)
        rc = sl_teamstore_team_list(db, NULL, &out, &err);
    else
        rc = sl_teamstore_user_list(db, NULL, NULL, 1, 100, &out, &err);
    json_decref(body);
    sl_db_close(db);
    if (rc != SL_OK)
        return key_exit(&err);
    if (strcmp(sub, "create") == 0)
        printf("%s\n", json_string_value(json_object_get(out, team ? "team_id" : "user_id")));
    else if (team)
        print_rows(out, team_cols, sizeof(team_cols) / sizeof(team_cols[0]));
    else
        print_rows(json_object_get(out, "users"), user_cols,
                   sizeof(user_cols) / sizeof(user_cols[0]));
    json_decref(out);
    return EXIT_OK;
}

/* ---- spend report: spendstore.c ------------------------------------------ */

/* spend report [--group-by team|customer|api_key|model] [--start YYYY-MM-DD]
 * [--end YYYY-MM-DD]: /global/spend/report as lines of day, group, spend,
 * tokens, requests (tab-separated, oldest day first). */
static int cmd_spend(const struct sl_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "group-by", required_argument, NULL, 'g' },
        { "start", required_argument, NULL, 's' },
        { "end", required_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    static const char *const lists[][4] = {   /* --group-by, its list, name, label */
        { "team", "teams", "team_id", "team_alias" }, { "customer", "customers", "customer", "" },
        { "api_key", "api_keys", "api_key", "key_alias" }, { "model", "models", "model", "" },
    };
    const char *group = "team", *start = NULL, *end = NULL, *const *list = NULL;
    struct sl_db_settings s;
    struct sl_db_error dberr;
    struct sl_keystore_err err;
    struct sl_db *db = NULL;
    json_t *out = NULL, *day, *g;
    size_t i, j;
    int c, rc;

    if (argc < 1 || strcmp(argv[0], "report") != 0) {
        fprintf(stderr, "sluicectl: spend: expected report\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    optind = 0;
    while ((c = getopt_long(argc, argv, "g:s:e:", opts, NULL)) != -1) {
        switch (c) {
        case 'g': group = optarg; break;
        case 's': start = optarg; break;
        case 'e': end = optarg; break;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(group, lists[i][0]) == 0)
            list = lists[i];
    if (optind != argc || list == NULL) {
        fprintf(stderr, "sluicectl: spend report: --group-by is team, customer, api_key or model\n");
        return EXIT_USAGE;
    }
    sl_db_settings_from_config(cfg, &s);
    if (sl_db_open(&s, 0, &db, &dberr) != SL_OK) {
        print_db_error("spend", &dberr);
        return EXIT_DB;
    }
    rc = sl_spendstore_report(db, start, end, group, &out, &err);
    sl_db_close(db);
    if (rc != SL_OK)
        return key_exit(&err);
    printf("day\t%s\t%s\tspend\ttotal_tokens\tapi_requests\n", list[2],
           list[3][0] ? list[3] : "-");
    json_array_foreach(out, i, day) {
        json_array_foreach(json_object_get(day, list[1]), j, g) {
            const char *name = json_string_value(json_object_get(g, list[2]));
            const char *label = list[3][0] ? json_string_value(json_object_get(g, list[3])) : NULL;

            printf("%s\t%s\t%s\t%.10g\t%lld\t%lld\n", str_or(day, "group_by_day", "-"),
                   name != NULL && *name != '\0' ? name : "-", label != NULL ? label : "-",
                   json_number_value(json_object_get(g, "total_spend")),
                   (long long)json_integer_value(json_object_get(g, "total_tokens")),
                   (long long)json_integer_value(json_object_get(g, "api_requests")));
        }
    }
    json_decref(out);
    return EXIT_OK;
}

/* ---- import-litellm: import.c -------------------------------------------- */

/* The whole of path ("-": stdin) into *out (malloc'ed, NUL-terminated), at
 * most SL_IMPORT_MAX_FILE bytes. 0, or -1 after printing why. */
static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 1u << 16, n = 0, got;
    char *buf = NULL, *nb;
    int rc = -1;

    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "sluicectl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if ((nb = realloc(buf, cap + 1)) == NULL) {
            fprintf(stderr, "sluicectl: %s: out of memory\n", path);
            goto out;
        }
        buf = nb;
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= SL_IMPORT_MAX_FILE) {
            fprintf(stderr, "sluicectl: %s: larger than %llu MiB: export it in parts (WHERE ...)\n",
                    path, SL_IMPORT_MAX_FILE >> 20);
            goto out;
        }
        cap *= 2;
    }
    if (ferror(f)) {
        fprintf(stderr, "sluicectl: %s: %s\n", path, strerror(errno));
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* import-litellm's options (argv[0] is the command itself): *table (NULL:
 * guess), *dry_run, *file; 0 or -1. */
static int import_args(int argc, char **argv, const struct sl_import_table **table,
                       int *dry_run, const char **file)
{
    static const struct option opts[] = {
        { "table", required_argument, NULL, 't' },
        { "dry-run", no_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *table = NULL;
    *dry_run = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "t:n", opts, NULL)) != -1) {
        if (c == 'n') {
            *dry_run = 1;
        } else if (c == 't' && (*table = sl_import_table_named(optarg)) == NULL) {
            fprintf(stderr, "sluicectl: import-litellm: --table is one of budgets, teams, users, "
                    "memberships, keys (or the LiteLLM table name), not '%s'\n", optarg);
            return -1;
        } else if (c != 't') {
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "sluicectl: import-litellm: expected one FILE\n");
        return -1;
    }
    *file = argv[optind];
    return 0;
}

static int import_exit(int rc)
{
    return rc == SL_ERR_BAD_REQUEST ? EXIT_USAGE : EXIT_DB;
}

static int cmd_import(const struct sl_config *cfg, int argc, char **argv)
{
    const struct sl_import_table *t;
    struct sl_import_doc doc;
    struct sl_import_stats st;
    struct sl_db_settings s;
    struct sl_db_error dberr;
    struct sl_db *db = NULL;
    const char *file;
    char *data = NULL, err[1024];
    size_t len = 0;
    int dry_run, rc = EXIT_USAGE, st_rc;

    memset(&doc, 0, sizeof(doc));
    if (import_args(argc, argv, &t, &dry_run, &file) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (read_all(file, &data, &len) != 0)
        goto out;
    if ((st_rc = sl_import_parse(data, len, &doc, err, sizeof(err))) != SL_OK) {
        fprintf(stderr, "sluicectl: %s: %s; nothing imported\n", file, err);
        rc = import_exit(st_rc);
        goto out;
    }
    if (doc.n_cols == 0 && doc.n_rows == 0) {
        printf("%s: empty, nothing to import\n", file);
        rc = EXIT_OK;
        goto out;
    }
    if (t == NULL && (t = sl_import_detect(&doc, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluicectl: %s: %s\n", file, err);
        goto out;
    }
    sl_db_settings_from_config(cfg, &s);
    if (sl_db_open(&s, 0, &db, &dberr) != SL_OK) {
        print_db_error("import-litellm", &dberr);
        rc = EXIT_DB;
        goto out;
    }
    st_rc = sl_import_run(db, t, &doc, dry_run, &st, err, sizeof(err));
    if (st.ignored[0] != '\0')
        fprintf(stderr, "sluicectl: %s: ignoring columns %s does not have: %s\n", file,
                t->sql_name, st.ignored);
    if (st_rc != SL_OK) {
        fprintf(stderr, "sluicectl: %s: %s; nothing imported\n", file, err);
        rc = import_exit(st_rc);
        goto out;
    }
    printf("%s%s: %zu row%s into %s (%zu new, %zu updated)%s\n", dry_run ? "dry run: " : "",
           file, st.rows, st.rows == 1 ? "" : "s", t->sql_name, st.inserted, st.updated,
           dry_run ? ", rolled back" : "");
    rc = EXIT_OK;
out:
    sl_db_close(db);
    sl_import_doc_free(&doc);
    free(data);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "schema-dir", required_argument, NULL, 's' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = getenv("SLUICE_CONFIG"), *dir = getenv("SLUICE_SCHEMA_DIR"), *cmd;
    char real[PATH_MAX];
    struct sl_config *cfg;
    int c, rc;

    /* '+': stop at the command, whose own options (key create) follow it */
    while ((c = getopt_long(argc, argv, "+c:s:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 's': dir = optarg; break;
        case 'V': printf("sluicectl %s\n", PACKAGE_VERSION); return EXIT_OK;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc ||
        (optind != argc - 1 && strcmp(argv[optind], "key") != 0 &&
         strcmp(argv[optind], "team") != 0 && strcmp(argv[optind], "user") != 0 &&
         strcmp(argv[optind], "spend") != 0 && strcmp(argv[optind], "import-litellm") != 0)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "status") != 0 && strcmp(cmd, "key") != 0 &&
        strcmp(cmd, "team") != 0 && strcmp(cmd, "user") != 0 && strcmp(cmd, "spend") != 0 &&
        strcmp(cmd, "import-litellm") != 0) {
        fprintf(stderr, "sluicectl: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (path == NULL || *path == '\0')
        path = SL_SYSCONFDIR "/sluice/config.yaml";
    if (dir == NULL || *dir == '\0')
        dir = default_schema_dir();
    if (realpath(dir, real) != NULL)
        dir = real;   /* messages name the directory plainly */
    signal(SIGPIPE, SIG_IGN);
    sl_log_level = SL_LOG_ERROR;
    if ((cfg = load_config(path)) == NULL)
        return EXIT_CONFIG;
    if (strcmp(cmd, "key") == 0)
        rc = cmd_key(cfg, argc - optind - 1, argv + optind + 1);
    else if (strcmp(cmd, "import-litellm") == 0)
        rc = cmd_import(cfg, argc - optind, argv + optind);   /* argv[0]: the command */
    else if (strcmp(cmd, "spend") == 0)
        rc = cmd_spend(cfg, argc - optind - 1, argv + optind + 1);
    else if (strcmp(cmd, "team") == 0 || strcmp(cmd, "user") == 0)
        rc = cmd_team_user(cfg, cmd, argc - optind - 1, argv + optind + 1);
    else
        rc = strcmp(cmd, "migrate") == 0 ? cmd_migrate(cfg, dir) : cmd_status(cfg, dir);
    sl_config_unref(cfg);
    sl_db_global_cleanup();
    return rc;
}
