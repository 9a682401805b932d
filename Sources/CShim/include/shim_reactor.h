#ifndef SMARTHOST_SHIM_REACTOR_H
#define SMARTHOST_SHIM_REACTOR_H
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

/* epoll_event is packed on x86_64, which Swift imports poorly: a plain mirror. */
typedef struct shim_epoll_event {
    uint32_t events;
    uint64_t data;
} shim_epoll_event;

extern const uint32_t SHIM_EPOLLIN;
extern const uint32_t SHIM_EPOLLOUT;
extern const uint32_t SHIM_EPOLLERR;
extern const uint32_t SHIM_EPOLLHUP;
extern const uint32_t SHIM_EPOLLRDHUP;
/* MSG_NOSIGNAL through the shim: the header above brings sys/socket.h in as well, and with
   both modules defining the macro, Swift's incremental builds sometimes failed to find it. */
extern const int SHIM_MSG_NOSIGNAL;

int shim_epoll_create(void);
int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int shim_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int shim_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data);
int shim_epoll_del(int epfd, int fd);
int shim_epoll_wait(int epfd, shim_epoll_event *out, int max, int timeout_ms);

/* Blocks the given signals in the calling thread; threads it starts later inherit the mask. */
int shim_block_signals(const int *signals, int count);
/* 1 when every given signal is blocked in the calling thread, else 0. */
int shim_signals_blocked(const int *signals, int count);
/* pthread_create with the given signals blocked in the new thread from its first instruction
   (the creator's mask plus these; the creator's own mask is restored). Returns 0 or an errno. */
int shim_thread_create_blocking(pthread_t *thread, void *(*start)(void *), void *arg, const int *signals, int count);
/* Blocks the given signals for the whole process and returns a signalfd for them. */
int shim_signalfd_create(const int *signals, int count);
/* Returns the signal number read, 0 on EAGAIN, -1 on error. */
int shim_signalfd_read(int fd);
/* Unblocks every signal in the calling thread (for children after fork/exec). */
void shim_unblock_all_signals(void);

int shim_eventfd_create(void);
int shim_eventfd_signal(int fd);
int shim_eventfd_drain(int fd);

int shim_accept4(int fd, struct sockaddr *addr, socklen_t *len);
int shim_socket_nonblocking(int domain, int type, int protocol);
#endif
