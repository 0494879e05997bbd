/*
 * libuv helpers.  Writes and queued datagrams carry their request and
 * their bytes in one malloc'd block, freed in the completion callback
 * (which libuv always calls, with UV_ECANCELED when the handle closes), so
 * nothing leaks whichever way a connection ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "net.h"
#include "os.h"

struct net_write {
    uv_write_t req;
    hd_write_done_cb cb;
    uint8_t data[];
};

struct net_send {
    uv_udp_send_t req;
    uint8_t data[];
};

/*
 * v4-mapped IPv6 (::ffff:a.b.c.d) to plain IPv4, in place.  Private on
 * purpose: common/addr.c exports the general hd_addr_normalize.
 */
static void normalize(struct sockaddr_storage *ss)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    struct sockaddr_in s4;

    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = s6->sin6_port;
    memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &s4, sizeof(s4));
}

int hd_net_listen_tcp(uv_loop_t *loop, uv_tcp_t *tcp,
                      const struct sockaddr *addr, int backlog,
                      uv_connection_cb cb)
{
    int r;

    if ((r = uv_tcp_init(loop, tcp)) != 0)
        return r;
    /* libuv sets SO_REUSEADDR, and IPV6_V6ONLY to 0 without the flag; a
     * busy port shows up only in uv_listen (bind's error is deferred). */
    if ((r = uv_tcp_bind(tcp, addr, 0)) != 0)
        goto out;
    r = uv_listen((uv_stream_t *)tcp, backlog > 0 ? backlog : SOMAXCONN, cb);
out:
    if (r != 0)
        uv_close((uv_handle_t *)tcp, NULL);
    return r;
}

void hd_net_udp_buffers(uv_udp_t *udp)
{
    int size;

    /* Best effort: Linux caps these at net.core.[rw]mem_max silently. */
    size = HD_NET_UDP_SOCKBUF;
    (void)uv_recv_buffer_size((uv_handle_t *)udp, &size);
    size = HD_NET_UDP_SOCKBUF;
    (void)uv_send_buffer_size((uv_handle_t *)udp, &size);
}

int hd_net_bind_udp(uv_loop_t *loop, uv_udp_t *udp, const struct sockaddr *addr,
                    unsigned flags)
{
    uv_os_fd_t fd;
    int r;

    /* Create the socket now so IPV6_V6ONLY can be cleared before bind:
     * unlike TCP, libuv leaves it at the system default for UDP. */
    if ((r = uv_udp_init_ex(loop, udp, addr->sa_family)) != 0)
        return r;
    if (addr->sa_family == AF_INET6 && !(flags & UV_UDP_IPV6ONLY)) {
        int off = 0;

        if ((r = uv_fileno((uv_handle_t *)udp, &fd)) != 0)
            goto out;
        if (setsockopt((os_sock)(uintptr_t)fd, IPPROTO_IPV6, IPV6_V6ONLY,
                       (const char *)&off, sizeof(off)) != 0) {
            r = os_sock_error();
            goto out;
        }
    }
    if ((r = uv_udp_bind(udp, addr, flags)) != 0)
        goto out;
    hd_net_udp_buffers(udp);
out:
    if (r != 0)
        uv_close((uv_handle_t *)udp, NULL);
    return r;
}

static void on_written(uv_write_t *req, int status)
{
    struct net_write *w = (struct net_write *)req;

    if (w->cb != NULL)
        w->cb(req->handle, status);
    free(w);
}

int hd_net_writev(uv_stream_t *stream, const uv_buf_t *bufs, unsigned nbufs,
                  hd_write_done_cb cb)
{
    struct net_write *w;
    size_t total = 0, off = 0;
    uv_buf_t buf;
    int r;

    if (uv_is_closing((uv_handle_t *)stream) || !uv_is_writable(stream))
        return UV_EPIPE;
    for (unsigned i = 0; i < nbufs; i++) {
        if (bufs[i].len > SIZE_MAX - sizeof(*w) - total)
            return UV_ENOMEM;
        total += bufs[i].len;
    }
    w = malloc(sizeof(*w) + total);
    if (w == NULL)
        return UV_ENOMEM;
    for (unsigned i = 0; i < nbufs; i++) {
        if (bufs[i].len > 0)
            memcpy(w->data + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    w->cb = cb;
    buf.base = (char *)w->data;
    buf.len = total;
    if ((r = uv_write(&w->req, stream, &buf, 1, on_written)) != 0)
        free(w);
    return r;
}

int hd_net_write(uv_stream_t *stream, const uint8_t *data, size_t n,
                 hd_write_done_cb cb)
{
    uv_buf_t buf;

    buf.base = (char *)data;
    buf.len = n;
    return hd_net_writev(stream, &buf, 1, cb);
}

bool hd_net_backlogged(const uv_stream_t *stream, size_t max)
{
    return uv_stream_get_write_queue_size(stream) > max;
}

static void on_sent(uv_udp_send_t *req, int status)
{
    free(req); /* a lost datagram is normal for UDP; callers resend */
}

int hd_net_udp_send(uv_udp_t *udp, const struct sockaddr *to,
                    const uint8_t *data, size_t n)
{
    struct sockaddr_in6 mapped;
    struct net_send *s;
    uv_buf_t buf;
    int r;

    buf.base = (char *)data;
    buf.len = n;
    r = uv_udp_try_send(udp, &buf, 1, to);
    if ((r == UV_EAFNOSUPPORT || r == UV_EINVAL) && to->sa_family == AF_INET) {
        /* An IPv6 socket on a system that wants ::ffff:a.b.c.d (macOS). */
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)to;

        memset(&mapped, 0, sizeof(mapped));
        mapped.sin6_family = AF_INET6;
        mapped.sin6_port = s4->sin_port;
        mapped.sin6_addr.s6_addr[10] = 0xff;
        mapped.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&mapped.sin6_addr.s6_addr[12], &s4->sin_addr, 4);
        to = (const struct sockaddr *)&mapped;
        r = uv_udp_try_send(udp, &buf, 1, to);
    }
    if (r >= 0)
        return 0;
    if (r != UV_EAGAIN)
        return r;
    if (uv_udp_get_send_queue_size(udp) + n > HD_NET_UDP_MAX_QUEUE)
        return UV_ENOBUFS;
    s = malloc(sizeof(*s) + n);
    if (s == NULL)
        return UV_ENOMEM;
    if (n > 0)
        memcpy(s->data, data, n);
    buf.base = (char *)s->data;
    if ((r = uv_udp_send(&s->req, udp, &buf, 1, to, on_sent)) != 0)
        free(s);
    return r;
}

int hd_net_peer_addr(const uv_tcp_t *tcp, struct sockaddr_storage *out)
{
    int len = (int)sizeof(*out), r;

    memset(out, 0, sizeof(*out));
    if ((r = uv_tcp_getpeername(tcp, (struct sockaddr *)out, &len)) != 0) {
        memset(out, 0, sizeof(*out));
        return r;
    }
    normalize(out);
    return 0;
}

int hd_net_local_addr(const uv_handle_t *handle, struct sockaddr_storage *out)
{
    int len = (int)sizeof(*out), r;

    memset(out, 0, sizeof(*out));
    switch (handle->type) {
    case UV_TCP:
        r = uv_tcp_getsockname((const uv_tcp_t *)handle, (struct sockaddr *)out,
                               &len);
        break;
    case UV_UDP:
        r = uv_udp_getsockname((const uv_udp_t *)handle, (struct sockaddr *)out,
                               &len);
        break;
    default:
        r = UV_EINVAL;
        break;
    }
    if (r != 0) {
        memset(out, 0, sizeof(*out));
        return r;
    }
    normalize(out);
    return 0;
}

int hd_net_port(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)addr)->sin_port);
    if (addr->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    return 0;
}

void hd_net_close(uv_handle_t *handle, uv_close_cb cb)
{
    if (!uv_is_closing(handle))
        uv_close(handle, cb);
}

void hd_net_frame_buf(struct hd_frame_decoder *d, size_t want, uv_buf_t *buf)
{
    uint8_t *p;
    size_t avail;

    if (hd_frame_decoder_reserve(d, want, &p, &avail) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)p;
    buf->len = avail;
}
