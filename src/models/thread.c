/* thread: one detached POSIX thread per connection, blocking system calls
 * (conn.c's blocking waits).  The classic model: simple, and it costs a
 * thread creation per connection and a kernel stack and scheduler entity
 * per open connection. */
#define _GNU_SOURCE
#include "models/conn.h"
#include "models/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 256 KiB instead of glibc's 8 MiB default: the connection's buffers are on
 * the heap, and the deepest path (posix_spawn for CGI, under ASan too) uses
 * a few tens of KiB.  Ten thousand threads then reserve 2.5 GiB of address
 * space rather than 80. */
#define THREAD_STACK (256u * 1024)

typedef struct thread_server {
    sp_conn_server srv;
    pthread_mutex_t lock;
    pthread_cond_t idle;   /* signalled when the last connection ends */
    int live;
} thread_server;

static void *conn_thread(void *arg)
{
    sp_conn *c = arg;
    thread_server *t = c->owner;

    sp_conn_serve(c);
    sp_conn_free(c);
    pthread_mutex_lock(&t->lock);
    if (--t->live == 0)
        pthread_cond_signal(&t->idle);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static int thread_serve(const sp_server_opts *o)
{
    thread_server t;
    pthread_attr_t attr;
    int lfd, port, rc;

    lfd = sp_server_listen(o, SP_SERVER_NONBLOCK, &port);
    if (lfd < 0) {
        fprintf(stderr, "spindle serve: listen: %s\n", strerror(errno));
        return 1;
    }
    rc = sp_conn_server_init(&t.srv, o, &sp_conn_ops_blocking, port);
    if (rc < 0) {
        fprintf(stderr, "spindle serve: %s\n", strerror(-rc));
        close(lfd);
        return 1;
    }
    pthread_mutex_init(&t.lock, NULL);
    pthread_cond_init(&t.idle, NULL);
    t.live = 0;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    sp_server_ready(port, "thread", NULL);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len;
        pthread_t tid;
        sp_conn *c;
        int fd = sp_server_accept(lfd, &peer, &len);

        if (fd < 0) {
            if (errno == ECANCELED)
                break;
            perror("spindle serve: accept");
            continue;
        }
        c = sp_conn_new(&t.srv);
        if (!c) {
            close(fd);
            continue;
        }
        sp_conn_start(c, fd, (struct sockaddr *)&peer, len, NULL);
        c->owner = &t;
        pthread_mutex_lock(&t.lock);
        t.live++;
        pthread_mutex_unlock(&t.lock);
        rc = pthread_create(&tid, &attr, conn_thread, c);
        if (rc != 0) {
            /* Out of threads (EAGAIN): this client is refused, the next
             * one may find a thread freed. */
            pthread_mutex_lock(&t.lock);
            t.live--;
            pthread_mutex_unlock(&t.lock);
            close(fd);
            sp_conn_free(c);
        }
    }
    /* Stopping: no new connection; the threads finish what they read. */
    close(lfd);
    pthread_mutex_lock(&t.lock);
    while (t.live > 0)
        pthread_cond_wait(&t.idle, &t.lock);
    pthread_mutex_unlock(&t.lock);
    pthread_attr_destroy(&attr);
    sp_conn_server_destroy(&t.srv);
    return 0;
}

const sp_model sp_model_thread = {
    .name = "thread",
    .summary = "a thread per connection, blocking calls",
    .serve = thread_serve,
};
