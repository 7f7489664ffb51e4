/* fcgi-ping: a tiny FastCGI client for bench/run.sh and bench/callgrind.sh.
 *
 * Speaks raw FastCGI records over TCP (or a unix socket): BEGIN_REQUEST,
 * PARAMS, STDIN (the body, then an empty record), then reads STDOUT/STDERR
 * records until END_REQUEST. One connection per request, no FCGI_KEEP_CONN,
 * which is what lighttpd does too.
 *
 *   fcgi-ping [options] ADDR                 send -n requests, print a summary
 *   fcgi-ping [options] ADDR -- CMD ARGS...  start CMD, poll ADDR until the
 *                                            first 2xx answer, print the time
 *                                            from exec to that answer, stop CMD
 * ADDR is HOST:PORT or a unix socket path.
 * Options:
 *   -m METHOD   request method (default GET, POST if a body is given)
 *   -u URI      request URI (default /health/liveliness)
 *   -d BODY     request body (string)
 *   -D FILE     request body (read from FILE)
 *   -H 'N: v'   request header, sent as HTTP_N (repeatable)
 *   -n COUNT    requests to send one after another (default 1)
 *   -t MS       time-out per request in ms (default 10000); with a command,
 *               the time to wait for the first answer (default 5000)
 *   -v          print the last response (headers and body) on stdout
 *   -q          print nothing but errors
 * Exit status: 0 when every answer had a 2xx status, 1 otherwise, 2 on usage.
 *
 * Not part of the product: a benchmark fixture. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    T_BEGIN = 1, T_ABORT = 2, T_END = 3, T_PARAMS = 4, T_STDIN = 5,
    T_STDOUT = 6, T_STDERR = 7
};

struct out {            /* a growing byte buffer */
    char *p;
    size_t len, cap;
};

static struct {
    const char *addr;
    const char *method;
    const char *uri;
    char *body;
    size_t body_len;
    const char *headers[64];
    int n_headers;
    long count;
    long timeout_ms;
    int verbose, quiet;
} opt;

static pid_t child_pid;

static void die(const char *msg)
{
    fprintf(stderr, "fcgi-ping: %s\n", msg);
    exit(2);
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void out_add(struct out *o, const void *p, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;

        while (cap < o->len + n + 1)
            cap *= 2;
        o->p = realloc(o->p, cap);
        if (!o->p)
            die("out of memory");
        o->cap = cap;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_record(struct out *o, int type, const void *p, size_t n)
{
    unsigned char h[8];

    h[0] = 1;                     /* version */
    h[1] = (unsigned char)type;
    h[2] = 0;                     /* request id 1 */
    h[3] = 1;
    h[4] = (unsigned char)(n >> 8);
    h[5] = (unsigned char)(n & 0xff);
    h[6] = 0;                     /* no padding */
    h[7] = 0;
    out_add(o, h, 8);
    if (n)
        out_add(o, p, n);
}

static void put_len(struct out *o, size_t n)
{
    unsigned char b[4];

    if (n < 128) {
        b[0] = (unsigned char)n;
        out_add(o, b, 1);
    } else {
        b[0] = (unsigned char)(0x80 | ((n >> 24) & 0x7f));
        b[1] = (unsigned char)(n >> 16);
        b[2] = (unsigned char)(n >> 8);
        b[3] = (unsigned char)n;
        out_add(o, b, 4);
    }
}

static void put_param(struct out *params, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    put_len(params, nl);
    put_len(params, vl);
    out_add(params, name, nl);
    out_add(params, value, vl);
}

/* The whole request as one byte string, built once and sent for every ping. */
static void build_request(struct out *req)
{
    struct out params = {0};
    char tmp[512];
    const char *q = strchr(opt.uri, '?');
    unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};   /* RESPONDER, no keep-conn */
    size_t off;
    int i;

    put_param(&params, "GATEWAY_INTERFACE", "CGI/1.1");
    put_param(&params, "SERVER_SOFTWARE", "fcgi-ping");
    put_param(&params, "SERVER_PROTOCOL", "HTTP/1.1");
    put_param(&params, "SERVER_NAME", "127.0.0.1");
    put_param(&params, "SERVER_ADDR", "127.0.0.1");
    put_param(&params, "SERVER_PORT", "80");
    put_param(&params, "REMOTE_ADDR", "127.0.0.1");
    put_param(&params, "REMOTE_PORT", "40000");
    put_param(&params, "REQUEST_METHOD", opt.method);
    put_param(&params, "REQUEST_URI", opt.uri);
    put_param(&params, "SCRIPT_NAME", "");
    snprintf(tmp, sizeof tmp, "%.*s", q ? (int)(q - opt.uri) : (int)strlen(opt.uri), opt.uri);
    put_param(&params, "PATH_INFO", tmp);
    put_param(&params, "QUERY_STRING", q ? q + 1 : "");
    put_param(&params, "HTTP_HOST", "127.0.0.1");
    snprintf(tmp, sizeof tmp, "%zu", opt.body_len);
    put_param(&params, "CONTENT_LENGTH", tmp);
    if (opt.body_len)
        put_param(&params, "CONTENT_TYPE", "application/json");
    for (i = 0; i < opt.n_headers; i++) {
        const char *h = opt.headers[i], *colon = strchr(h, ':');
        char name[256];
        size_t k, j;

        if (!colon || colon == h || (size_t)(colon - h) > sizeof name - 6)
            die("a header must look like 'Name: value'");
        memcpy(name, "HTTP_", 5);
        for (k = 0, j = 5; h + k < colon; k++, j++)
            name[j] = h[k] == '-' ? '_' : (char)toupper((unsigned char)h[k]);
        name[j] = '\0';
        colon++;
        while (*colon == ' ')
            colon++;
        put_param(&params, name, colon);
    }

    put_record(req, T_BEGIN, begin, sizeof begin);
    for (off = 0; off < params.len; off += 65535) {
        size_t n = params.len - off > 65535 ? 65535 : params.len - off;

        put_record(req, T_PARAMS, params.p + off, n);
    }
    put_record(req, T_PARAMS, NULL, 0);
    for (off = 0; off < opt.body_len; off += 65535) {
        size_t n = opt.body_len - off > 65535 ? 65535 : opt.body_len - off;

        put_record(req, T_STDIN, opt.body + off, n);
    }
    put_record(req, T_STDIN, NULL, 0);
    free(params.p);
}

static int dial(void)
{
    int fd;

    if (opt.addr[0] == '/') {
        struct sockaddr_un su;

        memset(&su, 0, sizeof su);
        su.sun_family = AF_UNIX;
        if (strlen(opt.addr) >= sizeof su.sun_path)
            die("socket path too long");
        strcpy(su.sun_path, opt.addr);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&su, sizeof su) != 0) {
            close(fd);
            return -1;
        }
    } else {
        struct sockaddr_in si;
        char host[256];
        const char *colon = strrchr(opt.addr, ':');
        int one = 1;

        if (!colon || (size_t)(colon - opt.addr) >= sizeof host)
            die("ADDR must be HOST:PORT or a unix socket path");
        memcpy(host, opt.addr, (size_t)(colon - opt.addr));
        host[colon - opt.addr] = '\0';
        memset(&si, 0, sizeof si);
        si.sin_family = AF_INET;
        si.sin_port = htons((uint16_t)atoi(colon + 1));
        if (strcmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &si.sin_addr) != 1)
            die("HOST must be an IPv4 address");
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&si, sizeof si) != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int read_full(int fd, unsigned char *p, size_t n, double deadline)
{
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int left = (int)((deadline - now_us()) / 1000);
        ssize_t r;

        if (left <= 0)
            return -1;
        if (poll(&pfd, 1, left) <= 0)
            return -1;
        r = read(fd, p + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* One request. Returns the HTTP status (200 when the answer has no Status
 * header), or -1 if the connection failed, -2 on time-out or broken protocol.
 * The STDOUT bytes are left in *resp. */
static int ping_once(const struct out *req, struct out *resp, long timeout_ms)
{
    double deadline = now_us() + (double)timeout_ms * 1000.0;
    size_t off = 0;
    int fd, status = -2;

    resp->len = 0;
    fd = dial();
    if (fd < 0)
        return -1;
    while (off < req->len) {
        ssize_t w = write(fd, req->p + off, req->len - off);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    for (;;) {
        unsigned char h[8], pad[256];
        unsigned char *content;
        size_t clen;

        if (read_full(fd, h, 8, deadline) != 0)
            break;
        clen = (size_t)h[4] << 8 | h[5];
        content = malloc(clen + 1);
        if (!content)
            die("out of memory");
        if (read_full(fd, content, clen, deadline) != 0 ||
            read_full(fd, pad, h[6], deadline) != 0) {
            free(content);
            break;
        }
        if (h[1] == T_STDOUT)
            out_add(resp, content, clen);
        else if (h[1] == T_STDERR && !opt.quiet)
            fwrite(content, 1, clen, stderr);
        free(content);
        if (h[1] == T_END) {
            status = 200;
            break;
        }
    }
    close(fd);
    if (status == 200 && resp->len) {
        /* "Status: NNN" in the header block, if any. */
        const char *p = resp->p;

        while (*p && *p != '\r' && *p != '\n') {
            if (strncasecmp(p, "Status:", 7) == 0) {
                status = atoi(p + 7);
                break;
            }
            p = strchr(p, '\n');
            if (!p)
                break;
            p++;
        }
    }
    return status;
}

static void read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct out o = {0};
    char buf[65536];
    size_t n;

    if (!f)
        die("cannot open the body file");
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        out_add(&o, buf, n);
    fclose(f);
    opt.body = o.p ? o.p : calloc(1, 1);
    opt.body_len = o.len;
}

static void stop_child(void)
{
    int i, st;

    if (child_pid <= 0)
        return;
    kill(child_pid, SIGTERM);
    for (i = 0; i < 300; i++) {          /* up to 3 s */
        if (waitpid(child_pid, &st, WNOHANG) == child_pid) {
            child_pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(child_pid, SIGKILL);
    waitpid(child_pid, &st, 0);
    child_pid = 0;
}

static void on_signal(int sig)
{
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_spawn(char **cmd, const struct out *req)
{
    struct out resp = {0};
    double t0, t_answer = 0;
    long wait_ms = opt.timeout_ms > 0 ? opt.timeout_ms : 5000;
    long tries = 0;
    int status = -1, st;
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    t0 = now_us();
    child_pid = fork();
    if (child_pid < 0)
        die("fork failed");
    if (child_pid == 0) {
        execvp(cmd[0], cmd);
        fprintf(stderr, "fcgi-ping: cannot exec %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    for (;;) {
        tries++;
        status = ping_once(req, &resp, 1000);
        if (status >= 200 && status < 300) {
            t_answer = now_us();
            break;
        }
        if (waitpid(child_pid, &st, WNOHANG) == child_pid) {
            child_pid = 0;
            fprintf(stderr, "fcgi-ping: the command exited before answering (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            return 1;
        }
        if (now_us() - t0 > (double)wait_ms * 1000.0) {
            fprintf(stderr, "fcgi-ping: no 2xx answer within %ld ms (last status %d)\n",
                    wait_ms, status);
            stop_child();
            return 1;
        }
        usleep(200);
    }
    if (opt.verbose)
        fwrite(resp.p, 1, resp.len, stdout);
    printf("start_to_first_answer_us=%.0f tries=%ld status=%d\n", t_answer - t0, tries, status);
    fflush(stdout);
    stop_child();
    free(resp.p);
    return 0;
}

int main(int argc, char **argv)
{
    struct out req = {0}, resp = {0};
    char **cmd = NULL;
    long i, ok = 0, bad = 0, fails = 0;
    double t0, t1;
    int c, last = 0;

    opt.uri = "/health/liveliness";
    opt.count = 1;
    opt.timeout_ms = -1;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            argv[i] = NULL;
            cmd = argv + i + 1;
            argc = (int)i;
            break;
        }
    }
    while ((c = getopt(argc, argv, "m:u:d:D:H:n:t:vq")) != -1) {
        switch (c) {
        case 'm': opt.method = optarg; break;
        case 'u': opt.uri = optarg; break;
        case 'd': opt.body = optarg; opt.body_len = strlen(optarg); break;
        case 'D': read_file(optarg); break;
        case 'H':
            if (opt.n_headers == 64)
                die("too many headers");
            opt.headers[opt.n_headers++] = optarg;
            break;
        case 'n': opt.count = atol(optarg); break;
        case 't': opt.timeout_ms = atol(optarg); break;
        case 'v': opt.verbose = 1; break;
        case 'q': opt.quiet = 1; break;
        default:
            fprintf(stderr, "usage: fcgi-ping [-m METHOD] [-u URI] [-d BODY|-D FILE] [-H 'N: v']... "
                            "[-n COUNT] [-t MS] [-v] [-q] ADDR [-- CMD ARGS...]\n");
            return 2;
        }
    }
    if (optind != argc - 1)
        die("exactly one ADDR is needed (HOST:PORT or a unix socket path)");
    opt.addr = argv[optind];
    if (!opt.method)
        opt.method = opt.body_len ? "POST" : "GET";
    build_request(&req);

    if (cmd) {
        if (!cmd[0])
            die("no command after --");
        return run_spawn(cmd, &req);
    }

    if (opt.timeout_ms < 0)
        opt.timeout_ms = 10000;
    t0 = now_us();
    for (i = 0; i < opt.count; i++) {
        last = ping_once(&req, &resp, opt.timeout_ms);
        if (last >= 200 && last < 300)
            ok++;
        else if (last > 0)
            bad++;
        else
            fails++;
    }
    t1 = now_us();
    if (opt.verbose && resp.len)
        fwrite(resp.p, 1, resp.len, stdout);
    if (!opt.quiet)
        printf("requests=%ld ok=%ld non2xx=%ld failed=%ld last_status=%d elapsed_us=%.0f us_per_request=%.1f\n",
               opt.count, ok, bad, fails, last, t1 - t0,
               opt.count ? (t1 - t0) / (double)opt.count : 0.0);
    free(req.p);
    free(resp.p);
    return ok == opt.count ? 0 : 1;
}
