/* Unit tests of the host's metrics (metrics.h): processes (forked here)
 * counting into the shared file at once give exact sums; label sets beyond
 * the table's room are counted without their labels and the totals stay
 * exact; label values are escaped; the exposition is well formed; the
 * address list of metrics_allowed_ips. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "request.h"
#include "status.h"
#include "tap.h"

static struct sl_config cfg;

static void one_chat(int status, long prompt, long completion)
{
    struct sl_request req;

    memset(&req, 0, sizeof(req));
    req.cfg = &cfg;
    req.endpoint = SL_EP_CHAT;
    req.route_label = "/v1/chat/completions";
    req.http_status = status;
    req.error = status >= 400 ? SL_ERR_BAD_REQUEST : SL_OK;
    req.usage.prompt_tokens = prompt;
    req.usage.completion_tokens = completion;
    req.t_start_us = sl_now_us() - 70000;       /* 70 ms ago */
    sl_metrics_begin(&req);
    sl_metrics_end(&req);
}

static void one_route(const char *label)
{
    struct sl_request req;

    memset(&req, 0, sizeof(req));
    req.cfg = &cfg;
    req.endpoint = SL_EP_NONE;
    req.route_label = label;
    req.http_status = 200;
    sl_metrics_begin(&req);
    sl_metrics_end(&req);
}

static char *render(void)
{
    struct sl_buf b;
    char *s;

    sl_buf_init(&b, 64u << 20);
    if (sl_metrics_render(&b) != SL_OK) {
        sl_buf_free(&b);
        return NULL;
    }
    s = strdup(b.data ? b.data : "");
    sl_buf_free(&b);
    return s;
}

/* The value of the sample line that starts with head (name{labels}). */
static double value(const char *text, const char *head)
{
    size_t n = strlen(head);

    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, head, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

/* The sum of every sample of name (any labels). */
static double total(const char *text, const char *name)
{
    size_t n = strlen(name);
    double s = 0;

    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '{')) {
            const char *sp = strchr(p, '\n');
            const char *v = p;

            while (v < (sp ? sp : p + strlen(p)) && *v != ' ')
                v = *v == '"' ? strchr(v + 1, '"') + 1 : v + 1;   /* (no escapes in these) */
            s += atof(v);
        }
    return s;
}

static void test_processes(void)
{
    enum { PROCS = 4, EACH = 2500 };
    pid_t pids[PROCS];
    int good = 1;
    char *t;

    for (int i = 0; i < PROCS; i++) {
        if ((pids[i] = fork()) == 0) {
            for (int j = 0; j < EACH; j++)
                one_chat(j % 5 == 0 ? 400 : 200, 3, 2);
            _exit(0);
        }
    }
    for (int i = 0; i < PROCS; i++) {
        int st;

        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            good = 0;
    }
    ok(good, "four processes counted and exited");
    t = render();
    ok(t != NULL, "rendered");
    if (t == NULL)
        return;
    is_int(total(t, "litellm_proxy_total_requests_metric_total"), PROCS * EACH,
           "every request of every process, once");
    is_int(value(t, "litellm_proxy_total_requests_metric_total{hashed_api_key=\"\",api_key_alias=\"\","
                    "team=\"\",user=\"\",requested_model=\"\",status_code=\"400\","
                    "route=\"/v1/chat/completions\",model_id=\"\"}"), PROCS * EACH / 5,
           "by status");
    is_int(total(t, "litellm_proxy_failed_requests_metric_total"), PROCS * EACH / 5, "failures");
    ok(strstr(t, "exception_class=\"BadRequestError\"") != NULL, "failures have their class");
    is_int(total(t, "litellm_input_tokens_metric_total"), PROCS * EACH * 3, "input tokens");
    is_int(total(t, "litellm_output_tokens_metric_total"), PROCS * EACH * 2, "output tokens");
    is_int(total(t, "litellm_total_tokens_metric_total"), PROCS * EACH * 5, "total tokens");
    is_int(total(t, "litellm_request_total_latency_metric_count"), PROCS * EACH, "latency count");
    is_int(value(t, "litellm_request_total_latency_metric_bucket{hashed_api_key=\"\",api_key_alias=\"\","
                    "team=\"\",requested_model=\"\",user=\"\",model=\"\",model_id=\"\",le=\"0.05\"}"),
           0, "70 ms is not in the 50 ms bucket");
    is_int(value(t, "litellm_request_total_latency_metric_bucket{hashed_api_key=\"\",api_key_alias=\"\","
                    "team=\"\",requested_model=\"\",user=\"\",model=\"\",model_id=\"\",le=\"600.0\"}"),
           PROCS * EACH, "but in the 600 s one (buckets are cumulative)");
    ok(total(t, "litellm_request_total_latency_metric_sum") >= 0.07 * PROCS * EACH, "the sum in seconds");
    is_int(value(t, "litellm_request_total_latency_metric_bucket{hashed_api_key=\"\",api_key_alias=\"\","
                    "team=\"\",requested_model=\"\",user=\"\",model=\"\",model_id=\"\",le=\"+Inf\"}"),
           PROCS * EACH, "+Inf holds them all");
    ok(strstr(t, "le=\"1.0\"") != NULL && strstr(t, "le=\"0.025\"") != NULL, "bounds written as Go does");
    is_int(value(t, "sluice_http_requests_total{route=\"/v1/chat/completions\",status_code=\"200\"}"),
           PROCS * EACH * 4 / 5, "every route is counted");
    is_int(value(t, "litellm_in_flight_requests"), 0, "nothing in flight");
    is_int(value(t, "sluice_processes"), 0, "the processes that exited are not counted");
    ok(strstr(t, "# TYPE litellm_proxy_total_requests_metric_total counter\n") != NULL &&
       strstr(t, "# TYPE litellm_request_total_latency_metric histogram\n") != NULL, "TYPE lines");
    free(t);
}

static void test_overflow_and_escaping(void)
{
    enum { N = 9000 };           /* more label sets than the table holds */
    char label[64], *t;
    double before;

    t = render();
    before = t ? total(t, "sluice_http_requests_total") : -1;
    free(t);
    for (int i = 0; i < N; i++) {
        snprintf(label, sizeof(label), "/r/%d", i);
        one_route(label);
    }
    t = render();
    ok(t != NULL, "rendered with a full table");
    if (t == NULL)
        return;
    is_int(total(t, "sluice_http_requests_total") - before, N, "the totals stay exact");
    ok(value(t, "sluice_metrics_overflow_total") > 0, "the overflow is counted");
    ok(value(t, "sluice_http_requests_total{route=\"\",status_code=\"\"}") > 0,
       "label sets without room count in the row without labels");
    free(t);
}

static void test_escaping(void)
{
    char *t;

    one_route("/q\"uo\\te\nline");
    t = render();
    ok(t != NULL && strstr(t, "route=\"/q\\\"uo\\\\te\\nline\"") != NULL,
       "a quote, a backslash and a line break are escaped");
    free(t);
}

/* Where the file cannot be made, a process counts alone (in memory), and
 * /metrics still answers. Run in a child before this process maps the file. */
static void test_no_file(void)
{
    pid_t pid = fork();
    int st = -1;

    if (pid == 0) {
        char *t;
        int good;

        setenv("TMPDIR", "/dev/null", 1);   /* the spool directory cannot be made */
        one_chat(200, 3, 2);
        one_chat(200, 3, 2);
        t = render();
        good = t != NULL && total(t, "litellm_proxy_total_requests_metric_total") == 2 &&
               value(t, "sluice_processes") == 1;
        free(t);
        _exit(good ? 0 : 1);
    }
    ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "no file: the process counts alone, in memory");
}

static void test_addresses(void)
{
    struct sl_net nets[2];
    struct sl_config c;

    memset(&c, 0, sizeof(c));
    memset(nets, 0, sizeof(nets));
    nets[0].family = AF_INET;
    inet_pton(AF_INET, "10.1.0.0", nets[0].addr);
    nets[0].bits = 20;
    nets[1].family = AF_INET6;
    inet_pton(AF_INET6, "::1", nets[1].addr);
    nets[1].bits = 128;
    c.metrics_nets = nets;
    ok(!sl_metrics_addr_allowed(&c, "10.1.0.1"), "no list: nobody");
    c.n_metrics_nets = 2;
    ok(sl_metrics_addr_allowed(&c, "10.1.15.255"), "inside a /20");
    ok(!sl_metrics_addr_allowed(&c, "10.1.16.0"), "outside it");
    ok(sl_metrics_addr_allowed(&c, "::1"), "IPv6");
    ok(!sl_metrics_addr_allowed(&c, "::2"), "another IPv6");
    ok(!sl_metrics_addr_allowed(&c, "not an address"), "garbage");
    ok(!sl_metrics_addr_allowed(&c, NULL), "no REMOTE_ADDR");
}

int main(void)
{
    tap_private_tmpdir();
    cfg.metrics = 1;
    test_no_file();
    test_processes();
    test_escaping();
    test_overflow_and_escaping();
    test_addresses();
    return tap_done();
}
