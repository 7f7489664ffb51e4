/* The process: options, configuration, the FastCGI listen socket, a pool of
 * worker threads that each own one request from accept to finish, signals and
 * graceful shutdown. Also runs one request as plain CGI when started that way.
 *
 * The pool starts with `threads` workers and grows by one whenever the last
 * idle worker takes a request, up to `max_threads` + 1; the extra one only
 * waits (queue_timeout_ms) for a slot and otherwise answers 503, so a full
 * gateway says so quickly instead of letting requests hang. Workers beyond
 * `threads` exit after IDLE_EXIT_MS without a request: exiting at once would
 * make every burst re-create threads, curl handles and upstream connections.
 *
 * Idle workers wait in their own epoll set on the listen socket with
 * EPOLLEXCLUSIVE, so the kernel wakes one of them per connection; a shared
 * accept mutex would cost a second wake-up and futex calls per request. The
 * listen socket is non-blocking: a worker that loses the race gets EAGAIN.
 * The wait has a short time-out, so a stop request is seen within 200 ms
 * without signalling threads (libfcgi's own SIGTERM handler would leave
 * threads blocked in accept forever). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <fcgiapp.h>
#include <openssl/crypto.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "export.h"
#include "log.h"
#include "provider.h"
#include "request.h"
#include "spend.h"
#include "status.h"
#include "upstream.h"

#if defined(__SANITIZE_ADDRESS__)
#define WORKER_STACK (2u << 20)   /* ASan's redzones triple frame sizes */
#else
#define WORKER_STACK (256u << 10) /* curl + OpenSSL + Jansson fit with room */
#endif
#define ARENA_CAP    (256u << 20) /* per request, on top of the body's own cap */
#define ACCEPT_POLL_MS 200
#define IDLE_EXIT_MS   10000

static volatile sig_atomic_t stopping;

/* How long a stop waits for the spend writer's last flush: 2 s, plus a
 * connect attempt to a database that is down (then it spools). */
static long spend_stop_ms = 2000;
static int spend_busy;   /* the spend writer or a callback outlived the stop: keep the libraries */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t  slot;      /* a serving slot came free (only if someone waits) */
    pthread_cond_t  exited;    /* a worker exited */
    int listen_fd;
    int total;                 /* live workers */
    int idle;                  /* workers not serving a request */
    int inflight;              /* requests being served (or waiting for a slot) */
    int waiting;               /* workers waiting in take_slot */
    int min, max;
    long queue_timeout_ms, body_timeout_ms;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
           -1, 0, 0, 0, 0, 0, 0, 0, 0 };

/* Held (shared) around accept; SIGTERM takes it exclusively to close the
 * listen socket, so no worker ever accepts on a closed or reused fd. */
static pthread_rwlock_t listen_lock = PTHREAD_RWLOCK_INITIALIZER;

/* ---- the FastCGI connection ---------------------------------------------- */

static const char *fcgi_param(void *ctx, const char *name)
{
    return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);
}

static long fcgi_read(void *ctx, char *buf, size_t n)
{
    FCGX_Request *r = ctx;
    int got = FCGX_GetStr(buf, n > 65536 ? 65536 : (int)n, r->in);

    if (got > 0)
        return got;
    return FCGX_GetError(r->in) != 0 ? -1 : 0;
}

static int fcgi_write(void *ctx, const char *p, size_t n)
{
    FCGX_Request *r = ctx;

    while (n > 0) {
        int part = n > (1u << 30) ? (1 << 30) : (int)n;

        if (FCGX_PutStr(p, part, r->out) != part)
            return -1;
        p += part;
        n -= (size_t)part;
    }
    return 0;
}

static int fcgi_flush(void *ctx)
{
    return FCGX_FFlush(((FCGX_Request *)ctx)->out) == 0 ? 0 : -1;
}

static int fcgi_watch_fd(void *ctx)
{
    return ((FCGX_Request *)ctx)->ipcFd;
}

static const struct sl_conn_ops fcgi_ops = {
    fcgi_param, fcgi_read, fcgi_write, fcgi_flush, fcgi_watch_fd,
};

/* ---- plain CGI ------------------------------------------------------------ */

static const char *cgi_param(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

static long cgi_read(void *ctx, char *buf, size_t n)
{
    ssize_t r;

    (void)ctx;
    do
        r = read(STDIN_FILENO, buf, n);
    while (r < 0 && errno == EINTR);
    return (long)r;
}

static int cgi_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static int cgi_flush(void *ctx)
{
    (void)ctx;
    return fflush(stdout) == 0 ? 0 : -1;
}

static int cgi_watch_fd(void *ctx)
{
    (void)ctx;
    return -1;
}

static const struct sl_conn_ops cgi_ops = {
    cgi_param, cgi_read, cgi_write, cgi_flush, cgi_watch_fd,
};

/* ---- the pool ------------------------------------------------------------- */

static int spawn_worker(void);

/* An epoll set with the listen socket, for one worker; -1 on failure. */
static int listen_epoll(void)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep < 0)
        return -1;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, pool.listen_fd, &ev) != 0) {
        ev.events = EPOLLIN;      /* kernels before 4.5 */
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pool.listen_fd, &ev) != 0) {
            close(ep);
            return -1;
        }
    }
    return ep;
}

/* Waits for a connection, then accepts. 1: a request, 0: nothing yet
 * (time-out, or another worker or process won), -1: stopping. */
static int accept_one(FCGX_Request *r, int ep)
{
    struct epoll_event ev;
    int rc = 0;

    if (stopping)
        return -1;
    if (epoll_wait(ep, &ev, 1, ACCEPT_POLL_MS) > 0) {
        pthread_rwlock_rdlock(&listen_lock);
        if (!stopping && pool.listen_fd >= 0)
            rc = FCGX_Accept_r(r) == 0 ? 1 : 0;
        pthread_rwlock_unlock(&listen_lock);
    }
    return stopping && rc == 0 ? -1 : rc;
}

static void set_timeouts(int fd)
{
    struct timeval tv = { .tv_sec = pool.body_timeout_ms / 1000,
                          .tv_usec = (pool.body_timeout_ms % 1000) * 1000 };

    /* A client trickling its body (or a web server that stopped reading our
     * output) must not pin a worker forever. */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The wall-clock time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(long ms)
{
    return sl_deadline(CLOCK_REALTIME, ms * 1000LL);
}

/* Takes a serving slot; the worker over the ceiling waits for one. */
static int take_slot(void)
{
    struct timespec until;
    int grow, ok = 1;

    pthread_mutex_lock(&pool.lock);
    pool.idle--;
    pool.inflight++;
    grow = pool.idle == 0 && pool.total < pool.max + 1;
    if (pool.inflight > pool.max) {
        until = deadline_in(pool.queue_timeout_ms);
        pool.waiting++;
        while (pool.inflight > pool.max && ok)
            ok = pthread_cond_timedwait(&pool.slot, &pool.lock, &until) == 0 ||
                 pool.inflight <= pool.max;
        pool.waiting--;
    }
    pthread_mutex_unlock(&pool.lock);
    if (grow && ok)
        spawn_worker();
    return ok;
}

/* Gives the slot back. */
static void give_slot(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.inflight--;
    pool.idle++;
    if (pool.waiting > 0)
        pthread_cond_signal(&pool.slot);
    pthread_mutex_unlock(&pool.lock);
}

/* Whether a worker idle since idle_since should leave (and if so, leaves the
 * pool's counts). */
static int idle_exit(long long idle_since)
{
    int leave = 0;

    if (sl_now_us() - idle_since < IDLE_EXIT_MS * 1000LL)
        return 0;
    pthread_mutex_lock(&pool.lock);
    if (pool.total > pool.min && pool.idle > 1) {
        pool.total--;
        pool.idle--;
        leave = 1;
        pthread_cond_broadcast(&pool.exited);
    }
    pthread_mutex_unlock(&pool.lock);
    return leave;
}

static void *worker(void *arg)
{
    FCGX_Request r;
    struct sl_arena *arena = sl_arena_create(ARENA_CAP);
    struct sl_upstream_thread *up = sl_upstream_thread_new();
    int counted = 1, ep = listen_epoll();
    long long idle_since = sl_now_us();

    (void)arg;
    if (arena == NULL || up == NULL || ep < 0 || FCGX_InitRequest(&r, pool.listen_fd, 0) != 0) {
        sl_log(SL_LOG_ERROR, NULL, "worker start failed: out of memory or descriptors");
        goto out;
    }
    for (;;) {
        struct sl_conn conn = { &fcgi_ops, &r };
        int got = accept_one(&r, ep);

        if (got < 0)
            break;
        if (got == 0) {
            if (idle_exit(idle_since)) {
                counted = 0;
                break;
            }
            continue;
        }
        set_timeouts(r.ipcFd);
        if (take_slot())
            sl_request_run(conn, arena, up);
        else
            sl_request_reject(conn, arena, SL_ERR_BUSY);
        FCGX_Finish_r(&r);
        give_slot();
        idle_since = sl_now_us();
    }
    FCGX_Free(&r, 1);
out:
    if (ep >= 0)
        close(ep);
    sl_upstream_thread_free(up);
    sl_arena_free(arena);
    /* OpenSSL's per-thread state (the random generator an RSA signature
     * creates) would be freed only after this thread is gone; main may be
     * past its wait by then. Free it before saying we left. */
    OPENSSL_thread_stop();
    pthread_mutex_lock(&pool.lock);
    if (counted) {
        pool.total--;
        pool.idle--;
    }
    pthread_cond_broadcast(&pool.exited);
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

static int spawn_worker(void)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    pthread_mutex_lock(&pool.lock);
    pool.total++;
    pool.idle++;
    pthread_mutex_unlock(&pool.lock);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, worker, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&pool.lock);
        pool.total--;
        pool.idle--;
        pthread_mutex_unlock(&pool.lock);
        sl_log(SL_LOG_ERROR, NULL, "cannot start a worker thread: %s", strerror(rc));
        return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* ---- process -------------------------------------------------------------- */

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
    FCGX_ShutdownPending();
}

/* After FCGX_Init, which installs handlers that only set a flag. */
static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

static const char *unix_path;   /* the socket file we created, if any */

/* Closes the listen socket once no worker is inside accept, so new
 * connections are refused at once (the web server answers 502/503, or a
 * sibling process takes them) instead of queueing in the backlog until the
 * drain is over. */
static void stop_listening(void)
{
    pthread_rwlock_wrlock(&listen_lock);
    if (pool.listen_fd >= 0) {
        close(pool.listen_fd);
        pool.listen_fd = -1;
    }
    if (unix_path != NULL)
        unlink(unix_path);
    pthread_rwlock_unlock(&listen_lock);
}

/* Waits for SIGTERM, then for in-flight requests (bounded). */
static void run_until_stopped(long shutdown_timeout_ms)
{
    struct timespec until;
    sigset_t none;

    /* The stop signals are blocked everywhere but here (serve), so they
     * land in this sigsuspend and an idle process does not wake at all. */
    sigemptyset(&none);
    while (!stopping)
        sigsuspend(&none);
    stop_listening();
    pthread_mutex_lock(&pool.lock);
    sl_log(SL_LOG_INFO, NULL, "stopping: %d request(s) in flight", pool.inflight);
    until = deadline_in(shutdown_timeout_ms);
    while (pool.total > 0)
        if (pthread_cond_timedwait(&pool.exited, &pool.lock, &until) == ETIMEDOUT)
            break;
    if (pool.total > 0)
        sl_log(SL_LOG_WARN, NULL, "shutdown time-out: cutting %d request(s)", pool.inflight);
    pthread_mutex_unlock(&pool.lock);
}

static int run_cgi(void)
{
    struct sl_arena *arena = sl_arena_create(ARENA_CAP);
    struct sl_upstream_thread *up = sl_upstream_thread_new();
    struct sl_conn conn = { &cgi_ops, NULL };

    if (arena == NULL || up == NULL) {
        sl_upstream_thread_free(up);
        sl_arena_free(arena);
        return 1;
    }
    sl_request_run(conn, arena, up);
    spend_busy = sl_export_shutdown(spend_stop_ms) != 0;
    spend_busy |= sl_spend_stop(spend_stop_ms) != 0;
    fflush(stdout);
    sl_upstream_thread_free(up);
    sl_arena_free(arena);
    return 0;
}

static int open_listen(const char *addr, const char *mode)
{
    int fd;

    if (addr[0] == ':') {
        /* libfcgi binds every interface for ":port"; we do not guess. */
        fprintf(stderr, "sluice: --listen %s: give an address, e.g. 127.0.0.1%s\n", addr, addr);
        return -1;
    }
    if (addr[0] == '/')
        unlink(addr);
    fd = FCGX_OpenSocket(addr, 1024);
    if (fd < 0) {
        fprintf(stderr, "sluice: cannot listen on %s: %s\n", addr, strerror(errno));
        return -1;
    }
    if (addr[0] == '/')
        unix_path = addr;
    if (addr[0] == '/' && chmod(addr, (mode_t)strtol(mode, NULL, 8)) != 0) {
        fprintf(stderr, "sluice: chmod %s: %s\n", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The listen socket systemd passed by socket activation ($LISTEN_PID is
 * us, $LISTEN_FDS one socket, on fd 3), -1 when there is none, -2 when the
 * variables are there but unusable. The variables are removed either way,
 * so nothing started from here inherits them. */
static int activated_socket(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end;
    long n;
    int fd = -1;

    if (pid == NULL || fds == NULL)
        return -1;
    n = strtol(pid, &end, 10);
    if (*end == '\0' && n == (long)getpid()) {
        n = strtol(fds, &end, 10);
        if (*end != '\0' || n != 1) {
            fprintf(stderr, "sluice: socket activation passed %s sockets; sluice takes exactly one\n", fds);
            fd = -2;
        } else {
            fd = 3;   /* SD_LISTEN_FDS_START */
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return fd;
}

/* Runs the FastCGI server until SIGTERM; returns the exit status. The
 * socket is --listen's, else systemd's, else the one on fd 0. */
static int serve(const char *path, const char *listen_addr, const char *mode, int activated,
                 int threads, long shutdown_ms)
{
    int failed = 0;
    sigset_t stops;

    pool.listen_fd = listen_addr ? open_listen(listen_addr, mode) : activated >= 0 ? activated : 0;
    if (pool.listen_fd < 0)
        return 1;
    fcntl(pool.listen_fd, F_SETFL, fcntl(pool.listen_fd, F_GETFL) | O_NONBLOCK);
    install_signals();
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);   /* workers inherit it */
    pool.min = threads;
    if (sl_config_watch_start(path, 1000) != SL_OK)
        sl_log(SL_LOG_WARN, NULL, "config hot reload is off: cannot start the watcher");
    for (int i = 0; i < pool.min; i++)
        if (spawn_worker() != SL_OK) {
            failed = stopping = 1;
            break;
        }
    if (!stopping)
        sl_log(SL_LOG_INFO, NULL, "sluice %s ready: %d worker(s), up to %d", PACKAGE_VERSION,
               pool.min, pool.max);
    run_until_stopped(shutdown_ms);
    sl_config_watch_stop();
    spend_busy = sl_export_shutdown(spend_stop_ms) != 0;
    spend_busy |= sl_spend_stop(spend_stop_ms) != 0;
    return failed;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sluice [--config FILE] [--listen HOST:PORT|/path.sock] [--socket-mode MODE]\n"
        "              [--threads N]\n"
        "       sluice --check-config FILE\n"
        "       sluice --version\n"
        "Runs as a FastCGI responder on the socket on fd 0 (lighttpd, mod_fcgid, spawn-fcgi),\n"
        "on --listen, on the socket systemd passes ($LISTEN_FDS), or as plain CGI.\n"
        "The config is --config, else $SLUICE_CONFIG, else\n"
        "%s/sluice/config.yaml.\n", SL_SYSCONFDIR);
}

static struct sl_config *load(const char *path, int check_only)
{
    struct sl_buf msgs;
    struct sl_config *cfg = NULL;
    int rc;

    sl_buf_init(&msgs, 1u << 20);
    rc = sl_config_load(path, &cfg, &msgs);
    if (msgs.len > 0)
        fputs(msgs.data, stderr);
    sl_buf_free(&msgs);
    if (rc != SL_OK) {
        fprintf(stderr, "sluice: %s: configuration not usable\n", path);
        return NULL;
    }
    if (check_only)
        fprintf(stderr, "sluice: %s: OK (%zu deployment(s))\n", path, cfg->n_deployments);
    return cfg;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", required_argument, NULL, 'C' },
        { "listen", required_argument, NULL, 'l' },
        { "socket-mode", required_argument, NULL, 'm' },
        { "threads", required_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = getenv("SLUICE_CONFIG"), *listen_addr = NULL, *mode = "0660";
    const char *threads_env = getenv("SLUICE_THREADS");
    struct sl_config *cfg;
    int c, rc, activated, threads = threads_env ? atoi(threads_env) : 0;
    long shutdown_ms;

    while ((c = getopt_long(argc, argv, "c:C:l:m:t:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'C': cfg = load(optarg, 1); sl_config_unref(cfg); return cfg ? 0 : 1;
        case 'l': listen_addr = optarg; break;
        case 'm': mode = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'V': printf("sluice %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (path == NULL)
        path = SL_SYSCONFDIR "/sluice/config.yaml";
    if (sl_provider_registry_check() != SL_OK || (cfg = load(path, 0)) == NULL)
        return 1;
    sl_config_export_env(cfg);
    sl_log_level = cfg->log_level;
    if (sl_upstream_global_init() != SL_OK) {
        fprintf(stderr, "sluice: libcurl initialisation failed\n");
        sl_config_unref(cfg);
        return 1;
    }
    FCGX_Init();
    shutdown_ms = cfg->shutdown_timeout_ms;
    if (threads <= 0)
        threads = cfg->threads;
    pool.max = cfg->max_threads > threads ? cfg->max_threads : threads;
    pool.queue_timeout_ms = cfg->queue_timeout_ms;
    pool.body_timeout_ms = cfg->body_timeout_ms;
    spend_stop_ms = 2000 + cfg->db_connect_timeout_ms;
    sl_config_install(cfg);          /* the process-wide pointer holds our reference now */
    activated = activated_socket();
    if (activated == -2) {
        rc = 2;
    } else if (listen_addr == NULL && activated < 0 && FCGX_IsCGI()) {
        if (getenv("REQUEST_METHOD") != NULL) {
            rc = run_cgi();
        } else {
            usage(stderr);
            fprintf(stderr, "sluice: no FastCGI socket on fd 0 and no CGI request: use --listen\n");
            rc = 2;
        }
    } else {
        /* Said once per process, not per CGI request. Connections are
         * opened by the requests that need them: a database that is down
         * never stops sluice from starting. */
        if (cfg->database_url != NULL) {
            sl_log(SL_LOG_INFO, NULL, "database: %s (connected on first use)",
                   cfg->database_url_masked);
            sl_spend_start();   /* replays a spool left by an earlier run */
        } else
            sl_log(SL_LOG_INFO, NULL, "no database configured (general_settings.database_url, "
                   "$DATABASE_URL): running with the master key alone");
        rc = serve(path, listen_addr, mode, activated, threads, shutdown_ms);
    }
    if (pool.total == 0 && !spend_busy) {
        /* No worker is left: release what they shared (clean leak checks). */
        sl_config_install(NULL);
        sl_upstream_global_cleanup();
        sl_db_global_cleanup();
    }
    return rc;
}
