// The floor: the least an HTTP/1.1 keep-alive server can spend per request on this kernel. It
// parses nothing: for every "\r\n\r\n" in what one recv returned it owes one canned 13-byte
// response, and sends all it owes in one send. One thread, level-triggered epoll, one recv and one
// send per batch. Every bench figure is read against this one on the same run.
// Usage: floor PORT (0 picks one; the port is printed on stdout)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Length: 13\r\n"
    "Content-Type: application/octet-stream\r\n\r\nabcdefghijklm";

int main(int argc, char** argv) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 0)};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
    perror("floor");
    return 1;
  }
  getsockname(listener, (struct sockaddr*)&address, &length);
  printf("%d\n", ntohs(address.sin_port));
  fflush(stdout);

  int poll = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(poll, EPOLL_CTL_ADD, listener, &event);
  static char in[65536], out[65536];
  const size_t size = sizeof kResponse - 1;
  struct epoll_event events[256];
  for (;;) {
    int ready = epoll_wait(poll, events, 256, -1);
    for (int i = 0; i < ready; i++) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int client;
        while ((client = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event added = {.events = EPOLLIN, .data.fd = client};
          epoll_ctl(poll, EPOLL_CTL_ADD, client, &added);
        }
        continue;
      }
      ssize_t got = recv(fd, in, sizeof in, 0);
      if (got <= 0) {
        close(fd);  // also leaves the epoll set
        continue;
      }
      size_t owed = 0;
      for (ssize_t j = 3; j < got; j++) owed += in[j] == '\n' && in[j - 1] == '\r' && in[j - 2] == '\n' && in[j - 3] == '\r';
      if (owed * size > sizeof out) owed = sizeof out / size;
      for (size_t k = 0; k < owed; k++) memcpy(out + k * size, kResponse, size);
      if (owed > 0 && send(fd, out, owed * size, MSG_NOSIGNAL) < 0) close(fd);
    }
  }
}
