/* Integration test support: see support.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "frame.h"
#include "tests/integration/support.h"

/* Defined below; used by the WebSocket client. */
static int read_exact(int fd, uint8_t *buf, size_t n, uint64_t deadline);

uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint16_t test_base_port(void)
{
    return (uint16_t)(10004 + randombytes_uniform(32760 - 10004));
}

const char *prog_path(const char *name, char *buf, size_t cap)
{
    const char *dir = getenv("HD_BUILD_DIR");

    snprintf(buf, cap, "%s/%s", dir && dir[0] ? dir : "build", name);
    return buf;
}

static int port_answers(uint16_t port)
{
    int fd = tcp_connect("127.0.0.1", port);

    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static int read_pub_key(struct srv *s)
{
    char path[400];
    FILE *f;
    size_t n, len;

    snprintf(path, sizeof(path), "%s/id_ed25519.pub", s->dir);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(s->pk_b64, 1, sizeof(s->pk_b64) - 1, f);
    fclose(f);
    s->pk_b64[n] = '\0';
    while (n > 0 && (s->pk_b64[n - 1] == '\n' || s->pk_b64[n - 1] == '\r'))
        s->pk_b64[--n] = '\0';
    if (sodium_base642bin(s->pk, sizeof(s->pk), s->pk_b64, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != 32)
        return -1;
    return 0;
}

/* Does the file contain needle in what was written from offset on? */
static int log_has_from(const char *path, off_t offset, const char *needle)
{
    char line[2048];
    int found = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return 0;
    if (fseeko(f, offset, SEEK_SET) == 0)
        while (!found && fgets(line, sizeof(line), f))
            found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int srv_start(struct srv *s, const char *dir, const char *const *extra)
{
    char prog[300], port[16], rport[16], hport[16];
    const char *argv[64];
    int attempt, restart = dir != NULL;

    if (sodium_init() < 0)
        return -1;
    if (!restart) {
        memset(s, 0, sizeof(*s));
        snprintf(s->dir, sizeof(s->dir), "/tmp/hd-itest-XXXXXX");
        if (mkdtemp(s->dir) == NULL)
            return -1;
        s->own_dir = 1;
    } else if (dir != s->dir) {
        snprintf(s->dir, sizeof(s->dir), "%s", dir);
    }
    snprintf(s->logpath, sizeof(s->logpath), "%s/server.log", s->dir);
    prog_path("homedesk-server", prog, sizeof(prog));
    for (attempt = 0; attempt < 8; attempt++) {
        int argc = 0, status;
        off_t log_start;
        uint64_t deadline;

        if (!restart || s->port == 0) {
            /* base-2 (http) .. base+3 (ws relay) */
            s->port = (uint16_t)(test_base_port());
            s->relay_port = (uint16_t)(s->port + 1);
            s->http_port = (uint16_t)(s->port - 2);
        }
        snprintf(port, sizeof(port), "%u", s->port);
        snprintf(rport, sizeof(rport), "%u", s->relay_port);
        snprintf(hport, sizeof(hport), "%u", s->http_port);
        argv[argc++] = prog;
        argv[argc++] = "--data-dir";
        argv[argc++] = s->dir;
        argv[argc++] = "--port";
        argv[argc++] = port;
        argv[argc++] = "--relay-port";
        argv[argc++] = rport;
        argv[argc++] = "--http-port";
        argv[argc++] = hport;
        argv[argc++] = "--bind";
        argv[argc++] = "127.0.0.1";
        for (int i = 0; extra && extra[i] && argc < 62; i++)
            argv[argc++] = extra[i];
        argv[argc] = NULL;

        {
            struct stat st;
            log_start = stat(s->logpath, &st) == 0 ? st.st_size : 0;
        }
        s->pid = fork();
        if (s->pid < 0)
            return -1;
        if (s->pid == 0) {
            int fd = open(s->logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, STDERR_FILENO);
                dup2(fd, STDOUT_FILENO);
                close(fd);
            }
            execv(prog, (char *const *)argv);
            _exit(127);
        }
        /* generous: sanitized builds on a loaded 2-core machine */
        deadline = now_ms() + 20000;
        while (now_ms() < deadline) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                s->pid = 0;
                break; /* exited: probably a port clash; try others */
            }
            /* ready: the ports answer, and it is our server that does
             * (its banner is in our log: another process could hold
             * these ports while ours failed to bind them) */
            if (port_answers(s->port) && port_answers(s->relay_port) &&
                port_answers((uint16_t)(s->port - 1)) &&
                log_has_from(s->logpath, log_start,
                             "forward to this machine") &&
                waitpid(s->pid, &status, WNOHANG) == 0 && read_pub_key(s) == 0)
                return 0;
            usleep(20000);
        }
        if (s->pid > 0) {
            printf("# srv_start: homedesk-server (port %u) not ready in 20 s\n",
                   s->port);
            srv_dump_log(s);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = 0;
            return -1;
        }
        printf("# srv_start: homedesk-server exited (attempt %d, port %u)\n",
               attempt + 1, s->port);
        if (restart) {
            /* the old ports may linger a moment: retry them a few times */
            usleep(200000);
            continue;
        }
    }
    srv_dump_log(s);
    return -1;
}

int srv_stop(struct srv *s)
{
    int status;

    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    if (waitpid(s->pid, &status, 0) != s->pid)
        return -1;
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void srv_cleanup(struct srv *s)
{
    char cmd[400];

    if (s->pid > 0)
        srv_stop(s);
    if (s->own_dir && s->dir[0] && getenv("HD_KEEP_TMP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
}

int srv_log_has(const struct srv *s, const char *needle, int wait_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)wait_ms;

    do {
        FILE *f = fopen(s->logpath, "r");
        char line[2048];
        int found = 0;

        if (f != NULL) {
            while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, needle) != NULL;
            fclose(f);
        }
        if (found)
            return 1;
        usleep(20000);
    } while (now_ms() < deadline);
    return 0;
}

void srv_dump_log(const struct srv *s)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' | sed 's/^/#   /'", s->logpath);
    fflush(stdout);
    if (system(cmd) != 0)
        printf("# (no server log)\n");
}

static int fill_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                     socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        *len = sizeof(*a);
        return inet_pton(AF_INET6, ip, &a->sin6_addr) == 1 ? 0 : -1;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        *len = sizeof(*a);
        return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
    }
}

int tcp_connect_from(const char *bind_ip, const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    if (fill_addr(ip, port, &ss, &len) != 0)
        return -1;
    if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind_ip != NULL) {
        struct sockaddr_storage b;
        socklen_t blen;
        if (fill_addr(bind_ip, 0, &b, &blen) != 0 ||
            bind(fd, (struct sockaddr *)&b, blen) != 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tcp_connect(const char *ip, uint16_t port)
{
    return tcp_connect_from(NULL, ip, port);
}

/* A socket bound to ip:0 of type (SOCK_DGRAM, SOCK_STREAM); fd or -1. */
static int bound_socket(const char *ip, int type)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    if (fill_addr(ip, 0, &ss, &len) != 0)
        return -1;
    if ((fd = socket(ss.ss_family, type, 0)) < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int udp_open(const char *ip)
{
    return bound_socket(ip, SOCK_DGRAM);
}

int tcp_listen_on(const char *ip)
{
    int fd = bound_socket(ip, SOCK_STREAM);

    if (fd >= 0 && listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

uint16_t sock_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int send_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;

    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int send_msg(int fd, const Hbb__RendezvousMessage *m)
{
    uint8_t *buf;
    size_t n;
    int r;

    if (hd_frame_pack(&m->base, &buf, &n) != 0)
        return -1;
    r = send_all(fd, buf, n);
    free(buf);
    return r;
}

/* Read exactly n bytes before the deadline. */
static int read_exact(int fd, uint8_t *buf, size_t n, uint64_t deadline)
{
    while (n > 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        uint64_t now = now_ms();
        ssize_t r;

        if (now >= deadline)
            return -1;
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            return -1;
        r = recv(fd, buf, n, 0);
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

ssize_t recv_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    uint8_t hdr[4];
    size_t hlen, plen;

    if (read_exact(fd, hdr, 1, deadline) != 0)
        return -1;
    hlen = (size_t)(hdr[0] & 3) + 1;
    if (hlen > 1 && read_exact(fd, hdr + 1, hlen - 1, deadline) != 0)
        return -1;
    if (hd_frame_parse_header(hdr, hlen, &hlen, &plen) != 1 || plen > cap)
        return -1;
    if (read_exact(fd, buf, plen, deadline) != 0)
        return -1;
    return (ssize_t)plen;
}

Hbb__RendezvousMessage *recv_msg(int fd, int timeout_ms, int skip_kx)
{
    static uint8_t buf[1 << 20];
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        uint64_t now = now_ms();
        ssize_t n;
        Hbb__RendezvousMessage *m;

        if (now >= deadline)
            return NULL;
        n = recv_frame(fd, buf, sizeof(buf), (int)(deadline - now));
        if (n < 0)
            return NULL;
        m = hbb__rendezvous_message__unpack(NULL, (size_t)n, buf);
        if (m == NULL)
            return NULL;
        if (skip_kx &&
            m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
            hbb__rendezvous_message__free_unpacked(m, NULL);
            continue;
        }
        return m;
    }
}

int wait_closed(int fd, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    uint8_t buf[4096];

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        uint64_t now = now_ms();
        ssize_t r;

        if (now >= deadline)
            return 0;
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            return 0;
        r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0)
            return 0;
    }
}

int udp_send_msg(int fd, const char *ip, uint16_t port,
                 const Hbb__RendezvousMessage *m)
{
    struct sockaddr_storage ss;
    socklen_t len;
    uint8_t buf[65536];
    size_t n = hbb__rendezvous_message__get_packed_size(m);

    if (n > sizeof(buf) || fill_addr(ip, port, &ss, &len) != 0)
        return -1;
    hbb__rendezvous_message__pack(m, buf);
    return sendto(fd, buf, n, 0, (struct sockaddr *)&ss, len) == (ssize_t)n
               ? 0
               : -1;
}

Hbb__RendezvousMessage *udp_recv_msg(int fd, int timeout_ms,
                                     struct sockaddr_storage *from)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint8_t buf[65536];
    socklen_t len = sizeof(*from);
    ssize_t n;

    if (poll(&pfd, 1, timeout_ms) <= 0)
        return NULL;
    n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &len);
    if (n < 0)
        return NULL;
    return hbb__rendezvous_message__unpack(NULL, (size_t)n, buf);
}

int ws_client_connect(const char *ip, uint16_t port)
{
    static const char req[] =
        "GET /ws/id HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    char resp[2048];
    size_t n = 0;
    uint64_t deadline = now_ms() + 3000;
    int fd = tcp_connect(ip, port);

    if (fd < 0 || send_all(fd, req, sizeof(req) - 1) != 0)
        goto fail;
    /* read the response header byte by byte: frames may follow it */
    while (n < sizeof(resp) - 1) {
        if (read_exact(fd, (uint8_t *)resp + n, 1, deadline) != 0)
            goto fail;
        n++;
        resp[n] = '\0';
        if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0 ||
        strstr(resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == NULL)
        goto fail;
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

int ws_client_send(int fd, const void *data, size_t n)
{
    uint8_t hdr[14], mask[4], *buf;
    size_t h = 0;
    int r;

    hdr[h++] = 0x82; /* FIN, binary */
    if (n < 126) {
        hdr[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(n >> 8);
        hdr[h++] = (uint8_t)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    randombytes_buf(mask, sizeof(mask));
    memcpy(hdr + h, mask, 4);
    h += 4;
    if ((buf = malloc(h + n)) == NULL)
        return -1;
    memcpy(buf, hdr, h);
    for (size_t i = 0; i < n; i++)
        buf[h + i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
    r = send_all(fd, buf, h + n);
    free(buf);
    return r;
}

ssize_t ws_client_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        uint8_t h[8];
        uint64_t len;
        int op, masked;

        if (read_exact(fd, h, 2, deadline) != 0)
            return -1;
        op = h[0] & 0x0f;
        masked = h[1] & 0x80; /* h is reused for the extended length */
        len = h[1] & 0x7f;
        if (len == 126) {
            if (read_exact(fd, h, 2, deadline) != 0)
                return -1;
            len = (uint64_t)h[0] << 8 | h[1];
        } else if (len == 127) {
            if (read_exact(fd, h, 8, deadline) != 0)
                return -1;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[i];
        }
        if (len > cap || masked)
            return -1; /* too big, or masked (servers never mask) */
        if (read_exact(fd, buf, (size_t)len, deadline) != 0)
            return -1;
        if (op == 0x2)
            return (ssize_t)len;
        if (op == 0x8)
            return -1;
    }
}

int http_request(const char *ip, uint16_t port, const char *req, char *buf,
                 size_t cap)
{
    size_t n = 0;
    int fd = tcp_connect(ip, port), status = -1;

    if (fd < 0)
        return -1;
    if (send_all(fd, req, strlen(req)) == 0) {
        for (;;) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            ssize_t r;

            if (n + 1 >= cap || poll(&pfd, 1, 3000) <= 0)
                break;
            if ((r = recv(fd, buf + n, cap - 1 - n, 0)) <= 0)
                break;
            n += (size_t)r;
        }
    }
    buf[n] = '\0';
    close(fd);
    if (n > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
        status = atoi(buf + 9);
    return status;
}

int http_get(const char *ip, uint16_t port, const char *path, char *buf,
             size_t cap)
{
    char req[512];

    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n\r\n",
             path, ip, port);
    return http_request(ip, port, req, buf, cap);
}

pid_t spawn_in(const char *cwd, const char *const *argv, const char *const *env,
               const char *logpath)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    if (cwd != NULL && chdir(cwd) != 0)
        _exit(126);
    for (int i = 0; env && env[i]; i++) {
        if (strchr(env[i], '=') != NULL)
            putenv((char *)env[i]);
        else
            unsetenv(env[i]);
    }
    if (logpath != NULL) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

void stop_pid(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        if (wait_exit(*pid, 5000) < 0) {
            kill(*pid, SIGKILL);
            waitpid(*pid, NULL, 0);
        }
    }
    *pid = 0;
}

int wait_exit(pid_t pid, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    int status;

    do {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        usleep(10000);
    } while (now_ms() < deadline);
    return -1;
}

int wait_port(uint16_t port, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;

    do {
        if (port_answers(port))
            return 1;
        usleep(20000);
    } while (now_ms() < deadline);
    return 0;
}

int file_has(const char *path, const char *needle, int wait_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)wait_ms;
    static char buf[1 << 20];

    do {
        int fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

        if (fd >= 0)
            close(fd);
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, needle) != NULL)
                return 1;
        }
        usleep(20000);
    } while (now_ms() < deadline);
    return 0;
}

/* The next frame of buf[0..n) from *off whose payload is sealed (more
 * than 1 byte), after skipping *skip frames; NULL at the end. */
static const uint8_t *next_sealed(const uint8_t *buf, size_t n, size_t *off,
                                  size_t *skip, size_t *len)
{
    size_t hl, pl;

    while (*off < n &&
           hd_frame_parse_header(buf + *off, n - *off, &hl, &pl) == 1 &&
           pl <= n - *off - hl) {
        const uint8_t *p = buf + *off + hl;

        *off += hl + pl;
        if (*skip > 0) {
            (*skip)--;
            continue;
        }
        if (pl > 1) {
            *len = pl;
            return p;
        }
    }
    return NULL;
}

size_t xor_leaks(const uint8_t *a, size_t na, size_t skip_a, const uint8_t *b,
                 size_t nb, size_t skip_b, size_t *pairs)
{
    size_t oa = 0, ob = 0, la = 0, lb = 0, leaks = 0;
    const uint8_t *fa, *fb;

    *pairs = 0;
    while ((fa = next_sealed(a, na, &oa, &skip_a, &la)) != NULL &&
           (fb = next_sealed(b, nb, &ob, &skip_b, &lb)) != NULL) {
        if (la <= 16 || lb <= 16)
            continue;
        (*pairs)++;
        if (((fa[16] ^ fb[16]) & 7) == 0)
            leaks++;
    }
    return leaks;
}

long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* ---- strip_proxy -------------------------------------------------------- */

struct strip_conn {
    struct strip_proxy *px;
    int cfd, sfd, strip, cut;
};

static void *strip_conn_run(void *arg)
{
    struct strip_conn *pc = arg;
    static const size_t cap = 65536;
    uint8_t *buf = malloc(cap);
    Hbb__RendezvousMessage *m = NULL;
    ssize_t n;

    if (buf == NULL)
        goto out;
    if ((n = recv_frame(pc->sfd, buf, cap, 5000)) < 0 ||
        (m = hbb__rendezvous_message__unpack(NULL, (size_t)n, buf)) == NULL)
        goto out;
    if (pc->strip &&
        m->union_case == HBB__RENDEZVOUS_MESSAGE__UNION_KEY_EXCHANGE) {
        m->key_exchange->hd_kx.len = 0; /* the offer of split keys */
        pc->px->stripped++;
    }
    if (send_msg(pc->cfd, m) != 0)
        goto out;
    while (!pc->px->stop && pc->px->cut == pc->cut) {
        struct pollfd p[2] = { { .fd = pc->cfd, .events = POLLIN },
                               { .fd = pc->sfd, .events = POLLIN } };

        if (poll(p, 2, 100) < 0)
            break;
        if (p[0].revents != 0 && ((n = read(pc->cfd, buf, cap)) <= 0 ||
                                  send_all(pc->sfd, buf, (size_t)n) != 0))
            break;
        if (p[1].revents != 0 && ((n = read(pc->sfd, buf, cap)) <= 0 ||
                                  send_all(pc->cfd, buf, (size_t)n) != 0))
            break;
    }
out:
    if (m != NULL)
        hbb__rendezvous_message__free_unpacked(m, NULL);
    free(buf);
    close(pc->cfd);
    close(pc->sfd);
    __atomic_sub_fetch(&pc->px->active, 1, __ATOMIC_SEQ_CST);
    free(pc);
    return NULL;
}

static void *strip_proxy_run(void *arg)
{
    struct strip_proxy *px = arg;

    while (!px->stop) {
        struct pollfd p = { .fd = px->lis, .events = POLLIN };
        struct strip_conn *pc;
        pthread_t t;
        int cfd;

        if (poll(&p, 1, 100) <= 0 || (cfd = accept(px->lis, NULL, NULL)) < 0)
            continue;
        if ((pc = calloc(1, sizeof(*pc))) == NULL) {
            close(cfd);
            continue;
        }
        pc->px = px;
        pc->cfd = cfd;
        pc->cut = px->cut;
        pc->strip = px->conns++ >= px->from_conn;
        pc->sfd = tcp_connect("127.0.0.1", px->to);
        __atomic_add_fetch(&px->active, 1, __ATOMIC_SEQ_CST);
        if (pc->sfd < 0 || pthread_create(&t, NULL, strip_conn_run, pc) != 0) {
            if (pc->sfd >= 0)
                close(pc->sfd);
            close(cfd);
            free(pc);
            __atomic_sub_fetch(&px->active, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int strip_proxy_start(struct strip_proxy *px, uint16_t to, int from_conn)
{
    memset(px, 0, sizeof(*px));
    px->to = to;
    px->from_conn = from_conn;
    if ((px->lis = tcp_listen_on("127.0.0.1")) < 0)
        return -1;
    px->port = sock_port(px->lis);
    if (pthread_create(&px->thread, NULL, strip_proxy_run, px) != 0) {
        close(px->lis);
        return -1;
    }
    return 0;
}

void strip_proxy_cut(struct strip_proxy *px)
{
    px->cut++;
}

void strip_proxy_stop(struct strip_proxy *px)
{
    px->stop = 1;
    pthread_join(px->thread, NULL);
    close(px->lis);
    /* the connections see stop within their 100 ms poll */
    while (__atomic_load_n(&px->active, __ATOMIC_SEQ_CST) > 0)
        poll(NULL, 0, 10);
}
