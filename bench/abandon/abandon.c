// Abandoning clients at loopback speed, for the full-speed abort-storm row of bench/run: each of N
// connections requests PATH, takes a random part of the response (64 KiB up to SIZE), and leaves,
// half with FIN and half with RST, then starts again. What bench/abandon.py does with a thread per
// client, in one thread and one epoll, and reading with MSG_TRUNC (the kernel drops the bytes
// instead of copying them out): the storm row shares CPU 1 with wrk, and 28 Python threads copying
// at loopback speed took that core from wrk, so the row measured the load generator instead of the
// server (wrk had about 4% of CPU 1). The server's side is the same: every byte is sent and
// acknowledged as if read.
// Usage: abandon PORT PATH CLIENTS SECONDS [SEED] [SIZE]; prints "abandoned=<count> bytes=<bytes>".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct client {
  int fd;
  int sent;  // the request went out
  long long want, got;
};

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static struct sockaddr_in server;
static char request[512];
static size_t request_len;
static unsigned seed;
static long long size = 10LL * 1024 * 1024;

static void start(int epoll, struct client* c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c->sent = 0;
  c->got = 0;
  c->want = 64 * 1024 + (long long)(rand_r(&seed) % (unsigned)(size - 64 * 1024 + 1));
  if (connect(c->fd, (struct sockaddr*)&server, sizeof server) != 0 && errno != EINPROGRESS) {
    perror("abandon: connect");
    exit(1);
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
  epoll_ctl(epoll, EPOLL_CTL_ADD, c->fd, &ev);
}

static void leave(struct client* c) {
  if (rand_r(&seed) % 2 == 0) {
    struct linger l = {.l_onoff = 1, .l_linger = 0};  // RST
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close(c->fd);  // also leaves the epoll set
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: abandon PORT PATH CLIENTS SECONDS [SEED] [SIZE]\n");
    return 2;
  }
  server.sin_family = AF_INET;
  server.sin_port = htons((unsigned short)atoi(argv[1]));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  request_len = (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", argv[2]);
  int n = atoi(argv[3]);
  double seconds = atof(argv[4]);
  seed = argc > 5 ? (unsigned)atoi(argv[5]) : 1;
  if (argc > 6) size = atoll(argv[6]);
  signal(SIGTERM, on_term);
  signal(SIGPIPE, SIG_IGN);

  int epoll = epoll_create1(0);
  struct client* clients = calloc((size_t)n, sizeof *clients);
  for (int i = 0; i < n; ++i) start(epoll, &clients[i]);
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long long abandoned = 0, bytes = 0;
  static char sink[1];  // MSG_TRUNC: nothing is copied into it
  struct epoll_event events[64];
  while (!stop) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= seconds) break;
    int ready = epoll_wait(epoll, events, 64, 100);
    for (int i = 0; i < ready; ++i) {
      struct client* c = events[i].data.ptr;
      int done = (events[i].events & EPOLLERR) != 0;
      if (!done && !c->sent && (events[i].events & EPOLLOUT)) {
        done = send(c->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len;
        c->sent = 1;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &ev);
      }
      while (!done && c->sent && c->got < c->want) {
        ssize_t r = recv(c->fd, sink, (size_t)(c->want - c->got), MSG_TRUNC | MSG_DONTWAIT);
        if (r > 0) {
          c->got += r;
          bytes += r;
        } else {
          done = r == 0 || errno != EAGAIN;
          break;
        }
      }
      if (done || c->got >= c->want) {
        if (c->sent) ++abandoned;
        leave(c);
        start(epoll, c);
      }
    }
  }
  printf("abandoned=%lld bytes=%lld\n", abandoned, bytes);
  return 0;
}
