#define _GNU_SOURCE
#include "shim_reactor.h"
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

const uint32_t SHIM_EPOLLIN = EPOLLIN;
const uint32_t SHIM_EPOLLOUT = EPOLLOUT;
const uint32_t SHIM_EPOLLERR = EPOLLERR;
const uint32_t SHIM_EPOLLHUP = EPOLLHUP;
const uint32_t SHIM_EPOLLRDHUP = EPOLLRDHUP;
const int SHIM_MSG_NOSIGNAL = MSG_NOSIGNAL;

int shim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}
int shim_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) { return shim_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events, data); }
int shim_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data) { return shim_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, events, data); }
int shim_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int shim_epoll_wait(int epfd, shim_epoll_event *out, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n;
    do { n = epoll_wait(epfd, evs, max, timeout_ms); } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) { out[i].events = evs[i].events; out[i].data = evs[i].data.u64; }
    return n;
}

static void shim_sigset_of(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}

int shim_block_signals(const int *signals, int count) {
    sigset_t set;
    shim_sigset_of(&set, signals, count);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int shim_signals_blocked(const int *signals, int count) {
    sigset_t current;
    if (pthread_sigmask(SIG_SETMASK, NULL, &current) != 0) return 0;
    for (int i = 0; i < count; i++) if (sigismember(&current, signals[i]) != 1) return 0;
    return 1;
}

int shim_thread_create_blocking(pthread_t *thread, void *(*start)(void *), void *arg, const int *signals, int count) {
    sigset_t set, saved;
    shim_sigset_of(&set, signals, count);
    int status = pthread_sigmask(SIG_BLOCK, &set, &saved);
    if (status != 0) return status;
    status = pthread_create(thread, NULL, start, arg);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return status;
}

int shim_signalfd_create(const int *signals, int count) {
    sigset_t set;
    shim_sigset_of(&set, signals, count);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int shim_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n;
    do { n = read(fd, &info, sizeof info); } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof info) return (int)info.ssi_signo;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
}

void shim_unblock_all_signals(void) {
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int shim_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int shim_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is saturated: the loop is already due to wake. */
    return (n == (ssize_t)sizeof one || errno == EAGAIN) ? 0 : -1;
}

int shim_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t n;
    do { n = read(fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof value ? 0 : -1;
}

int shim_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    int r;
    do { r = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC); } while (r < 0 && errno == EINTR);
    return r;
}

int shim_socket_nonblocking(int domain, int type, int protocol) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}
