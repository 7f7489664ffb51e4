/* fcgi-hello: the floor of the web-server hop for bench/run.sh.
 *
 * A minimal multi-threaded libfcgi responder: NTHREADS threads (env, default
 * 4) each loop on FCGX_Accept_r behind one accept mutex, drain the request
 * body and answer a small JSON. Nothing else, so whatever it costs is the
 * price of the web server + FastCGI round trip that sluice pays too.
 *
 * A body containing "stream":true gets an SSE answer instead: HELLO_EVENTS
 * (env, default 20) data events of about 300 bytes, the last one
 * "data: [DONE]", each written and flushed on its own, HELLO_GAP_MS (env,
 * default 0) apart: the floor of streaming through the same web server.
 *
 * Listens on fd 0 (the socket a spawner such as lighttpd hands over), or on
 * the address given as "--listen ADDR" ("127.0.0.1:9000" or a unix path).
 *
 * Build: gcc -O2 -pthread fcgi-hello.c $(pkg-config --cflags --libs fcgi)
 * Not part of the product: a benchmark fixture. */
#include <fcgiapp.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int listen_fd;
static int n_events = 20;
static long gap_ms;
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

static const char sse_head[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "\r\n";
/* About the size of one OpenAI chat.completion.chunk event. */
static const char sse_event[] =
    "data: {\"id\":\"chatcmpl-fcgi-hello-0000000000000000\",\"object\":\"chat.completion.chunk\","
    "\"created\":1741569952,\"model\":\"fcgi-hello\",\"service_tier\":\"default\","
    "\"system_fingerprint\":\"fp_0000000000\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":\" word\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n";
static const char sse_done[] = "data: [DONE]\n\n";

static void stream(FCGX_Request *r)
{
    struct timespec gap = { gap_ms / 1000, (gap_ms % 1000) * 1000000L };
    int i;

    FCGX_PutStr(sse_head, (int)(sizeof sse_head - 1), r->out);
    for (i = 0; i < n_events; i++) {
        if (i > 0 && gap_ms > 0)
            nanosleep(&gap, NULL);
        if (i == n_events - 1)
            FCGX_PutStr(sse_done, (int)(sizeof sse_done - 1), r->out);
        else
            FCGX_PutStr(sse_event, (int)(sizeof sse_event - 1), r->out);
        if (FCGX_FFlush(r->out) != 0)
            return;             /* the client left */
    }
}

static const char reply[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "\r\n"
    "{\"object\":\"hello\",\"ok\":true}\n";

static void *worker(void *arg)
{
    FCGX_Request r;
    char body[65536];

    (void)arg;
    if (FCGX_InitRequest(&r, listen_fd, 0) != 0)
        return NULL;
    for (;;) {
        int rc;

        pthread_mutex_lock(&accept_lock);
        rc = FCGX_Accept_r(&r);
        pthread_mutex_unlock(&accept_lock);
        if (rc < 0)
            break;
        /* Read the body to its end, as the gateway must; keep its start. */
        {
            int len = 0, got;
            char sink[8192];

            while (len < (int)sizeof body - 1 &&
                   (got = FCGX_GetStr(body + len, (int)sizeof body - 1 - len, r.in)) > 0)
                len += got;
            while (FCGX_GetStr(sink, sizeof sink, r.in) > 0)
                ;
            body[len] = '\0';
        }
        if (strstr(body, "\"stream\":true") != NULL)
            stream(&r);
        else
            FCGX_PutStr(reply, (int)(sizeof reply - 1), r.out);
        FCGX_Finish_r(&r);
    }
    return NULL;
}

/* FCGX_Init installs a SIGTERM handler that only sets a flag, so threads
 * blocked in accept() would never return: exit for real instead. */
static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *env = getenv("NTHREADS");
    int n = env ? atoi(env) : 4;
    pthread_t *tids;
    struct sigaction sa;
    int i;

    if ((env = getenv("HELLO_EVENTS")) != NULL && atoi(env) > 0)
        n_events = atoi(env);
    if ((env = getenv("HELLO_GAP_MS")) != NULL)
        gap_ms = atol(env);
    if (n < 1)
        n = 1;
    if (n > 1024)
        n = 1024;
    if (FCGX_Init() != 0) {
        fprintf(stderr, "fcgi-hello: FCGX_Init failed\n");
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    listen_fd = 0;
    if (argc == 3 && strcmp(argv[1], "--listen") == 0) {
        listen_fd = FCGX_OpenSocket(argv[2], 1024);
        if (listen_fd < 0) {
            fprintf(stderr, "fcgi-hello: cannot listen on %s\n", argv[2]);
            return 1;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: fcgi-hello [--listen ADDR]  (env NTHREADS, HELLO_EVENTS, HELLO_GAP_MS)\n");
        return 2;
    }

    tids = calloc((size_t)n, sizeof *tids);
    if (!tids)
        return 1;
    for (i = 0; i < n; i++) {
        if (pthread_create(&tids[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "fcgi-hello: pthread_create failed\n");
            return 1;
        }
    }
    for (i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    return 0;
}
