/*
 * tar-stream: moves an artifact's tar stream between GNU tar and an HTTP connection without
 * Node in the byte path (docs/kubernetes.md, "Agent protocol"). Node copying tar's pipe to the
 * socket and back cost about 2x of `tar c | tar x` (BENCHMARKS.md, k8s-steps); here the bytes
 * go pipe <-> socket by splice(2). Node still speaks the protocol's HTTP around it (token,
 * allowed paths, errors) and hands over the connected socket as fd 3, non-blocking as Node
 * keeps it (this program polls; it never changes the flag Node shares).
 *
 *   tar-stream send -- tar ARGS...     fd 3: a connection whose 200 head (chunked) Node wrote.
 *     Runs tar with its stdout on a pipe and sends that as chunks; the end chunk only when tar
 *     exited 0, so a consumer of a tar that died sees a cut answer, never a short whole one.
 *   tar-stream receive -- tar ARGS...  fd 3: a connection Node wrote the GET request on.
 *     Reads the answer's head; on 200 runs tar (with -z for a gzip body) with its stdin on a
 *     pipe and feeds it the body (chunked or Content-Length). An answer that ends before its
 *     end chunk or length fails (exit 65), whatever tar made of the part it got.
 *
 * Exit: tar's code when tar fails; 64 an answer other than 200 (stdout: the status, then up
 * to 4 KiB of its body); 65 a cut or malformed stream; 66 the connection closed or failed
 * before the answer's head (the producer may still be starting); 70 a local failure. The
 * last stderr line says why (tar's stderr goes there too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOCK 3
#define EXIT_STATUS 64
#define EXIT_CUT 65
#define EXIT_NO_ANSWER 66
#define EXIT_LOCAL 70

static pid_t tar_pid = -1;
static unsigned long long moved;

static void fail(int code, const char *fmt, ...) {
  va_list ap;
  if (tar_pid > 0) {
    kill(tar_pid, SIGKILL);
    waitpid(tar_pid, NULL, 0);
  }
  fputs("tar-stream: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(code);
}

/* Waits until fd is ready for events (the socket is non-blocking). */
static void wait_for(int fd, short events) {
  struct pollfd p = {.fd = fd, .events = events};
  while (poll(&p, 1, -1) < 0)
    if (errno != EINTR) fail(EXIT_LOCAL, "poll: %s", strerror(errno));
}

/* Starts tar (argv) with fd `child_end` as its stdin (0) or stdout (1). */
static void start_tar(char **argv, int child_fd, int child_end, int other_end) {
  tar_pid = fork();
  if (tar_pid < 0) fail(EXIT_LOCAL, "fork: %s", strerror(errno));
  if (tar_pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    dup2(child_end, child_fd);
    close(child_end);
    close(other_end);
    close(SOCK);
    execvp(argv[0], argv);
    fprintf(stderr, "tar-stream: %s: %s (GNU tar must be on PATH)\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(child_end);
}

/* tar's exit: 0, its code, or 128 + its signal. */
static int tar_exit(void) {
  int st;
  while (waitpid(tar_pid, &st, 0) < 0)
    if (errno != EINTR) fail(EXIT_LOCAL, "waitpid: %s", strerror(errno));
  tar_pid = -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  fprintf(stderr, "tar-stream: tar killed by signal %d\n", WTERMSIG(st));
  return 128 + WTERMSIG(st);
}

static void big_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) < 0) fail(EXIT_LOCAL, "pipe: %s", strerror(errno));
  /* 1 MiB (the unprivileged maximum): fewer wake-ups and larger chunks; the default is fine too. */
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
}

/* Writes all of buf to fd, waiting while it would block. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (errno == EAGAIN) wait_for(fd, POLLOUT);
      continue;
    }
    if (n < 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int send_stream(char **argv) {
  int fds[2];
  big_pipe(fds);
  start_tar(argv, 1, fds[1], fds[0]);
  char head[32];
  int first = 1;
  for (;;) {
    wait_for(fds[0], POLLIN);
    int avail = 0;
    if (ioctl(fds[0], FIONREAD, &avail) < 0) fail(EXIT_LOCAL, "FIONREAD: %s", strerror(errno));
    if (avail == 0) break; /* tar closed its stdout */
    int len = snprintf(head, sizeof head, "%s%x\r\n", first ? "" : "\r\n", avail);
    first = 0;
    if (write_all(SOCK, head, (size_t)len) < 0) fail(EXIT_CUT, "sending to the consumer: %s", strerror(errno));
    while (avail > 0) {
      ssize_t n = splice(fds[0], NULL, SOCK, NULL, (size_t)avail, SPLICE_F_MOVE | SPLICE_F_MORE);
      if (n < 0 && errno == EAGAIN) {
        wait_for(SOCK, POLLOUT);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail(EXIT_CUT, "sending to the consumer after %llu bytes: %s", moved, n < 0 ? strerror(errno) : "closed");
      avail -= (int)n;
      moved += (unsigned long long)n;
    }
  }
  close(fds[0]);
  int code = tar_exit();
  if (code != 0) return code; /* no end chunk: the consumer sees a cut answer */
  const char *end = first ? "0\r\n\r\n" : "\r\n0\r\n\r\n";
  if (write_all(SOCK, end, strlen(end)) < 0) fail(EXIT_CUT, "sending the end chunk: %s", strerror(errno));
  return 0;
}

/* The receive side's buffer: the head, chunk-size lines and what a read brought past them. */
static char buf[8192];
static size_t pos, len;

/* Reads up to max more bytes into buf; 0 at the end of the stream. */
static ssize_t fill(size_t max) {
  if (pos == len) pos = len = 0;
  if (len == sizeof buf) {
    memmove(buf, buf + pos, len - pos);
    len -= pos;
    pos = 0;
  }
  if (max > sizeof buf - len) max = sizeof buf - len;
  for (;;) {
    ssize_t n = read(SOCK, buf + len, max);
    if (n < 0 && errno == EAGAIN) {
      wait_for(SOCK, POLLIN);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    len += (size_t)n;
    return n;
  }
}

/* The next CRLF-terminated line (NUL-terminated in buf), reading a few bytes at a time so that
 * a chunk's data stays in the socket for splice. */
static char *line(const char *what) {
  for (;;) {
    char *crlf = memmem(buf + pos, len - pos, "\r\n", 2);
    if (crlf) {
      char *start = buf + pos;
      *crlf = '\0';
      pos = (size_t)(crlf + 2 - buf);
      return start;
    }
    if (pos == 0 && len == sizeof buf) fail(EXIT_CUT, "%s is longer than %zu bytes", what, sizeof buf);
    ssize_t n = fill(32);
    if (n <= 0)
      fail(EXIT_CUT, "the answer ended after %llu bytes of the tar stream, in %s: the producer's stream was cut (%s)", moved, what,
           n < 0 ? strerror(errno) : "connection closed");
  }
}

/* Moves count body bytes to the pipe: what buf holds first, then splice socket -> pipe.
 * -1 when tar stopped reading (its exit says why). */
static int body_bytes(int out, unsigned long long count, int lengthed) {
  while (count > 0 && pos < len) {
    size_t n = len - pos < count ? len - pos : (size_t)count;
    if (write_all(out, buf + pos, n) < 0) return -1;
    pos += n;
    count -= n;
    moved += n;
  }
  while (count > 0) {
    size_t want = count > (1 << 20) ? (1 << 20) : (size_t)count;
    ssize_t n = splice(SOCK, NULL, out, NULL, want, SPLICE_F_MOVE | SPLICE_F_MORE);
    if (n < 0 && errno == EAGAIN) {
      wait_for(SOCK, POLLIN);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return -1;
    if (n <= 0)
      fail(EXIT_CUT, "the answer ended after %llu bytes of the tar stream, %llu short of %s: the producer's stream was cut (%s)", moved,
           count, lengthed ? "its Content-Length" : "its chunk", n < 0 ? strerror(errno) : "connection closed");
    count -= (unsigned long long)n;
    moved += (unsigned long long)n;
  }
  return 0;
}

/* The value of header name in head (lines after the status line), or NULL. */
static const char *header(char *const *lines, int count, const char *name) {
  size_t k = strlen(name);
  for (int i = 0; i < count; i++)
    if (strncasecmp(lines[i], name, k) == 0 && lines[i][k] == ':') {
      const char *v = lines[i] + k + 1;
      while (*v == ' ' || *v == '\t') v++;
      return v;
    }
  return NULL;
}

/* Moves the answer's body (chunked, or Content-Length bytes) to out; stops early when out's
 * reader does (tar failing, which reads to the end with --ignore-zeros: its exit says why). */
static void body(int out, int chunked, const char *cl) {
  if (chunked) {
    for (;;) {
      char *size = line("a chunk's size line");
      char *endp;
      errno = 0;
      unsigned long long s = strtoull(size, &endp, 16);
      if (endp == size || errno || (*endp != '\0' && *endp != ';')) fail(EXIT_CUT, "a bad chunk size line: %.40s", size);
      if (s == 0) break;
      if (body_bytes(out, s, 0) < 0) return;
      if (*line("the end of a chunk") != '\0') fail(EXIT_CUT, "a chunk longer than its size line says");
    }
    while (*line("the trailer") != '\0') {
    }
  } else {
    char *endp;
    unsigned long long total = strtoull(cl, &endp, 10);
    if (endp == cl) fail(EXIT_CUT, "a bad Content-Length: %.40s", cl);
    body_bytes(out, total, 1);
  }
}

static int receive_stream(char **argv, int argc) {
  /* The head: the status line and headers, up to the empty line. */
  ssize_t n;
  while (!memmem(buf, len, "\r\n\r\n", 4)) {
    if (len == sizeof buf) fail(EXIT_CUT, "the answer's head is longer than %zu bytes", sizeof buf);
    n = fill(sizeof buf);
    if (n < 0) fail(EXIT_NO_ANSWER, "no answer: %s", strerror(errno));
    if (n == 0) fail(EXIT_NO_ANSWER, "no answer: the connection closed before the answer's head");
  }
  char *status = line("the status line");
  char *lines[64];
  int count = 0;
  for (char *l; *(l = line("a header")) != '\0';)
    if (count < 64) lines[count++] = l;
  int code = 0;
  if (sscanf(status, "HTTP/1.%*d %d", &code) != 1) fail(EXIT_CUT, "not an HTTP answer: %.80s", status);
  const char *te = header(lines, count, "transfer-encoding");
  const char *cl = header(lines, count, "content-length");
  const char *ce = header(lines, count, "content-encoding");
  int chunked = te && strcasestr(te, "chunked");
  if (code != 200) {
    /* For Node's error: the status, then the body (the server's reason). */
    dprintf(1, "%d\n", code);
    if (chunked || cl) {
      body(1, chunked, cl);
    } else {
      write_all(1, buf + pos, len - pos);
      while ((n = fill(sizeof buf)) > 0) write_all(1, buf + len - n, (size_t)n);
    }
    return EXIT_STATUS;
  }
  if (!chunked && !cl)
    fail(EXIT_CUT, "the answer has neither chunked encoding nor a Content-Length: a cut stream could not be told from a whole one");
  /* tar's argv, with -z for a gzip body */
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) fail(EXIT_LOCAL, "out of memory");
  memcpy(args, argv, (size_t)argc * sizeof *args);
  if (ce && strncasecmp(ce, "gzip", 4) == 0) args[argc] = "-z";

  int fds[2];
  big_pipe(fds);
  start_tar(args, 0, fds[0], fds[1]);
  body(fds[1], chunked, cl);
  close(fds[1]);
  return tar_exit();
}

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0 || (strcmp(argv[1], "send") != 0 && strcmp(argv[1], "receive") != 0)) {
    fputs("usage: tar-stream send|receive -- tar ARGS... (fd 3: the HTTP connection)\n", stderr);
    return EXIT_LOCAL;
  }
  if (fcntl(SOCK, F_GETFD) < 0) fail(EXIT_LOCAL, "fd 3 is not open: it must be the HTTP connection");
  fcntl(SOCK, F_SETFD, FD_CLOEXEC);
  /* A consumer that goes away is an EPIPE to report, not a signal that kills us silently. */
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(argv[1], "send") == 0) return send_stream(argv + 3);
  return receive_stream(argv + 3, argc - 3);
}
