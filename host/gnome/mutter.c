/*
 * mutter's ScreenCast and RemoteDesktop sessions through libdbus (see
 * mutter.h).  libdbus, not sd-bus: Debian's libsdl2-dev already brings
 * libdbus-1-dev, so it costs no package.  Calls during open wait for
 * mutter's reply (5 s at most); input events are sent without asking for
 * one; signals (the stream's PipeWire node, the session's end, mutter
 * leaving the bus) are read from the connection's queue by mutter_pump.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <dbus/dbus.h>

#include "host/gnome/mutter.h"
#include "log.h"

#define SC_NAME    "org.gnome.Mutter.ScreenCast"
#define SC_PATH    "/org/gnome/Mutter/ScreenCast"
#define SC_SESSION SC_NAME ".Session"
#define SC_STREAM  SC_NAME ".Stream"
#define RD_NAME    "org.gnome.Mutter.RemoteDesktop"
#define RD_PATH    "/org/gnome/Mutter/RemoteDesktop"
#define RD_SESSION RD_NAME ".Session"
#define TIMEOUT_MS 5000

/* The session bus's address, or NULL when there is none (never let libdbus
 * autolaunch one). */
static const char *bus_address(char *buf, size_t cap)
{
    const char *a = getenv("DBUS_SESSION_BUS_ADDRESS"), *rt;

    if (a != NULL && a[0] != '\0')
        return a;
    rt = getenv("XDG_RUNTIME_DIR");
    if (rt == NULL || rt[0] == '\0')
        return NULL;
    snprintf(buf, cap, "%s/bus", rt);
    if (access(buf, F_OK) != 0)
        return NULL;
    snprintf(buf, cap, "unix:path=%s/bus", rt);
    return buf;
}

/* A private connection to the session bus, or NULL (why in err). */
static DBusConnection *connect_bus(const char *addr, DBusError *err)
{
    DBusConnection *c = dbus_connection_open_private(addr, err);

    if (c == NULL)
        return NULL;
    if (!dbus_bus_register(c, err)) {
        dbus_connection_close(c);
        dbus_connection_unref(c);
        return NULL;
    }
    dbus_connection_set_exit_on_disconnect(c, FALSE);
    return c;
}

int mutter_present(void)
{
    const char *desk = getenv("XDG_CURRENT_DESKTOP"), *addr;
    char buf[300], list[256], *save = NULL;
    DBusConnection *c;
    DBusError err;
    int r;

    if (desk != NULL) {
        snprintf(list, sizeof(list), "%s", desk);
        for (char *t = strtok_r(list, ":", &save); t != NULL;
             t = strtok_r(NULL, ":", &save))
            if (strcasecmp(t, "GNOME") == 0)
                return 1;
    }
    if ((addr = bus_address(buf, sizeof(buf))) == NULL)
        return 0;
    dbus_error_init(&err);
    if ((c = connect_bus(addr, &err)) == NULL) {
        dbus_error_free(&err);
        return 0;
    }
    r = dbus_bus_name_has_owner(c, SC_NAME, &err) ? 1 : 0;
    dbus_error_free(&err);
    dbus_connection_close(c);
    dbus_connection_unref(c);
    return r;
}

/* ---- building and reading messages ---------------------------------------
 */

/* Append one "{sv}" entry of basic type to the open a{sv} arr. */
static void dict_add(DBusMessageIter *arr, const char *key, int type,
                     const void *val)
{
    DBusMessageIter e, v;
    char sig[2] = { (char)type, 0 };

    dbus_message_iter_open_container(arr, DBUS_TYPE_DICT_ENTRY, NULL, &e);
    dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key);
    dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, sig, &v);
    dbus_message_iter_append_basic(&v, type, val);
    dbus_message_iter_close_container(&e, &v);
    dbus_message_iter_close_container(arr, &e);
}

/*
 * Call iface.method on path of service dest and wait for the reply.  args
 * (may be NULL) appends the arguments.  Returns the reply (unref it) or
 * NULL after a log line naming step.
 */
static DBusMessage *call(struct mutter *m, const char *mod, const char *step,
                         const char *dest, const char *path, const char *iface,
                         const char *method,
                         void (*args)(DBusMessageIter *, const void *),
                         const void *arg)
{
    DBusMessage *msg, *reply;
    DBusMessageIter it;
    DBusError err;

    msg = dbus_message_new_method_call(dest, path, iface, method);
    if (msg == NULL)
        return NULL;
    if (args != NULL) {
        dbus_message_iter_init_append(msg, &it);
        args(&it, arg);
    }
    dbus_error_init(&err);
    reply = dbus_connection_send_with_reply_and_block(m->bus, msg, TIMEOUT_MS,
                                                      &err);
    dbus_message_unref(msg);
    if (reply == NULL) {
        hd_error(mod, "mutter refused %s (%s.%s): %s", step, iface, method,
                 err.message != NULL ? err.message : "no reply");
        dbus_error_free(&err);
    }
    return reply;
}

/* The object path a reply carries, into out (cap bytes).  0 or -1. */
static int reply_path(DBusMessage *reply, char *out, size_t cap)
{
    const char *p = NULL;

    if (reply == NULL ||
        !dbus_message_get_args(reply, NULL, DBUS_TYPE_OBJECT_PATH, &p,
                               DBUS_TYPE_INVALID) ||
        strlen(p) >= cap) {
        if (reply != NULL)
            dbus_message_unref(reply);
        return -1;
    }
    snprintf(out, cap, "%s", p);
    dbus_message_unref(reply);
    return 0;
}

/* ScreenCast.CreateSession's properties: the RemoteDesktop session's id */
static void args_session(DBusMessageIter *it, const void *rd_id)
{
    DBusMessageIter arr;

    dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &arr);
    if (rd_id != NULL)
        dict_add(&arr, "remote-desktop-session-id", DBUS_TYPE_STRING, &rd_id);
    dbus_message_iter_close_container(it, &arr);
}

/* RecordMonitor(connector, {"cursor-mode": u}) */
static void args_record(DBusMessageIter *it, const void *cursor)
{
    const char *conn = getenv("HOMEDESK_WAYLAND_OUTPUT");
    uint32_t mode = *(const uint32_t *)cursor;
    DBusMessageIter arr;

    if (conn == NULL)
        conn = "";
    dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &conn);
    dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &arr);
    dict_add(&arr, "cursor-mode", DBUS_TYPE_UINT32, &mode);
    dbus_message_iter_close_container(it, &arr);
}

static void args_get(DBusMessageIter *it, const void *names)
{
    const char *const *n = names;

    dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &n[0]);
    dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &n[1]);
}

/* A property's variant: *v inside reply (iterators into it). 0 or -1. */
static int reply_variant(DBusMessage *reply, DBusMessageIter *v)
{
    DBusMessageIter it;

    if (!dbus_message_iter_init(reply, &it) ||
        dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_VARIANT)
        return -1;
    dbus_message_iter_recurse(&it, v);
    return 0;
}

/* A "(ii)" inside variant v into a, b.  0 or -1. */
static int read_pair(DBusMessageIter *v, int *a, int *b)
{
    DBusMessageIter in, s;
    dbus_int32_t x, y;

    dbus_message_iter_recurse(v, &in);
    if (dbus_message_iter_get_arg_type(&in) != DBUS_TYPE_STRUCT)
        return -1;
    dbus_message_iter_recurse(&in, &s);
    if (dbus_message_iter_get_arg_type(&s) != DBUS_TYPE_INT32)
        return -1;
    dbus_message_iter_get_basic(&s, &x);
    if (!dbus_message_iter_next(&s) ||
        dbus_message_iter_get_arg_type(&s) != DBUS_TYPE_INT32)
        return -1;
    dbus_message_iter_get_basic(&s, &y);
    *a = x;
    *b = y;
    return 0;
}

/* The stream's "Parameters": the monitor's position and size. */
static void read_parameters(struct mutter *m, const char *mod)
{
    static const char *const names[2] = { SC_STREAM, "Parameters" };
    DBusMessage *reply;
    DBusMessageIter v, arr, e, val;
    const char *key;

    reply = call(m, mod, "the stream's parameters", SC_NAME, m->stream,
                 DBUS_INTERFACE_PROPERTIES, "Get", args_get, names);
    if (reply == NULL)
        return;
    if (reply_variant(reply, &v) != 0 ||
        dbus_message_iter_get_arg_type(&v) != DBUS_TYPE_ARRAY)
        goto out;
    for (dbus_message_iter_recurse(&v, &arr);
         dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_DICT_ENTRY;
         dbus_message_iter_next(&arr)) {
        dbus_message_iter_recurse(&arr, &e);
        dbus_message_iter_get_basic(&e, &key);
        if (!dbus_message_iter_next(&e) ||
            dbus_message_iter_get_arg_type(&e) != DBUS_TYPE_VARIANT)
            continue;
        val = e;
        if (strcmp(key, "position") == 0)
            read_pair(&val, &m->x, &m->y);
        else if (strcmp(key, "size") == 0)
            read_pair(&val, &m->w, &m->h);
    }
out:
    dbus_message_unref(reply);
}

/* ---- signals ----------------------------------------------------------- */

static void handle(struct mutter *m, DBusMessage *msg)
{
    const char *path = dbus_message_get_path(msg);
    const char *name = NULL, *old = NULL, *now = NULL;
    uint32_t node;

    if (dbus_message_is_signal(msg, SC_STREAM, "PipeWireStreamAdded") &&
        path != NULL && strcmp(path, m->stream) == 0) {
        if (dbus_message_get_args(msg, NULL, DBUS_TYPE_UINT32, &node,
                                  DBUS_TYPE_INVALID))
            m->node = node;
    } else if ((dbus_message_is_signal(msg, SC_SESSION, "Closed") &&
                path != NULL && strcmp(path, m->sc) == 0) ||
               (dbus_message_is_signal(msg, RD_SESSION, "Closed") &&
                path != NULL && strcmp(path, m->rd) == 0) ||
               dbus_message_is_signal(msg, DBUS_INTERFACE_LOCAL,
                                      "Disconnected")) {
        m->closed = 1;
    } else if (dbus_message_is_signal(msg, DBUS_INTERFACE_DBUS,
                                      "NameOwnerChanged") &&
               dbus_message_get_args(msg, NULL, DBUS_TYPE_STRING, &name,
                                     DBUS_TYPE_STRING, &old, DBUS_TYPE_STRING,
                                     &now, DBUS_TYPE_INVALID) &&
               (strcmp(name, SC_NAME) == 0 || strcmp(name, RD_NAME) == 0) &&
               now[0] == '\0') {
        m->closed = 1;
    }
}

/* Read and handle what arrives within ms (0: what is there). */
static void read_bus(struct mutter *m, int ms)
{
    DBusMessage *msg;

    if (!dbus_connection_read_write(m->bus, ms))
        m->closed = 1;
    while ((msg = dbus_connection_pop_message(m->bus)) != NULL) {
        handle(m, msg);
        dbus_message_unref(msg);
    }
}

/* Ask for the signals of rule head ending in "...=" with value a. */
static void add_match(struct mutter *m, const char *head, const char *a)
{
    char rule[400];

    snprintf(rule, sizeof(rule), "%s'%s'", head, a);
    dbus_bus_add_match(m->bus, rule, NULL); /* no error: does not block */
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- open / close ------------------------------------------------------ */

int mutter_open(struct mutter *m, enum mutter_kind kind,
                enum mutter_cursor cursor, const char *mod)
{
    static const char *const id_names[2] = { RD_SESSION, "SessionId" };
    char buf[300];
    const char *addr = bus_address(buf, sizeof(buf)), *rd_id = NULL;
    uint32_t mode = (uint32_t)cursor;
    DBusMessage *reply, *idr = NULL;
    DBusMessageIter v;
    DBusError err;
    uint64_t end;

    memset(m, 0, sizeof(*m));
    dbus_error_init(&err);
    if (addr == NULL) {
        hd_error(mod, "no session bus (DBUS_SESSION_BUS_ADDRESS is not set "
                      "and XDG_RUNTIME_DIR has no bus): run the host inside "
                      "the GNOME session");
        return -ENODEV;
    }
    if ((m->bus = connect_bus(addr, &err)) == NULL) {
        hd_error(mod, "cannot reach the session bus at %s: %s", addr,
                 err.message);
        dbus_error_free(&err);
        return -ENODEV;
    }
    if (!dbus_bus_name_has_owner(m->bus, SC_NAME, NULL) ||
        (kind == MUTTER_INPUT &&
         !dbus_bus_name_has_owner(m->bus, RD_NAME, NULL))) {
        hd_error(mod,
                 "no %s on the session bus %s: not a GNOME (mutter) desktop",
                 kind == MUTTER_INPUT ? RD_NAME : SC_NAME, addr);
        goto fail;
    }
    add_match(m,
              "type='signal',sender='" DBUS_SERVICE_DBUS
              "',member='NameOwnerChanged',arg0=",
              SC_NAME);
    if (kind == MUTTER_INPUT) {
        add_match(m,
                  "type='signal',sender='" DBUS_SERVICE_DBUS
                  "',member='NameOwnerChanged',arg0=",
                  RD_NAME);
        reply = call(m, mod, "a remote desktop session", RD_NAME, RD_PATH,
                     RD_NAME, "CreateSession", NULL, NULL);
        if (reply_path(reply, m->rd, sizeof(m->rd)) != 0)
            goto fail;
        add_match(
            m, "type='signal',interface='" RD_SESSION "',member='Closed',path=",
            m->rd);
        idr = call(m, mod, "the session's id", RD_NAME, m->rd,
                   DBUS_INTERFACE_PROPERTIES, "Get", args_get, id_names);
        if (idr == NULL || reply_variant(idr, &v) != 0 ||
            dbus_message_iter_get_arg_type(&v) != DBUS_TYPE_STRING)
            goto fail;
        dbus_message_iter_get_basic(&v, &rd_id);
    }
    reply = call(m, mod, "a screen cast session", SC_NAME, SC_PATH, SC_NAME,
                 "CreateSession", args_session, rd_id);
    if (reply_path(reply, m->sc, sizeof(m->sc)) != 0)
        goto fail;
    add_match(m,
              "type='signal',interface='" SC_SESSION "',member='Closed',path=",
              m->sc);
    reply = call(m, mod, "to record the monitor", SC_NAME, m->sc, SC_SESSION,
                 "RecordMonitor", args_record, &mode);
    if (reply_path(reply, m->stream, sizeof(m->stream)) != 0)
        goto fail;
    add_match(m,
              "type='signal',interface='" SC_STREAM
              "',member='PipeWireStreamAdded',path=",
              m->stream);
    reply = kind == MUTTER_INPUT ? call(m, mod, "to start", RD_NAME, m->rd,
                                        RD_SESSION, "Start", NULL, NULL)
                                 : call(m, mod, "to start", SC_NAME, m->sc,
                                        SC_SESSION, "Start", NULL, NULL);
    if (reply == NULL)
        goto fail;
    dbus_message_unref(reply);
    end = now_ms() + TIMEOUT_MS;
    while (kind == MUTTER_CAPTURE && m->node == 0 && !m->closed &&
           now_ms() < end)
        read_bus(m, (int)(end - now_ms()));
    if (kind == MUTTER_CAPTURE && m->node == 0) {
        hd_error(mod, "mutter announced no PipeWire stream for %s within %d s",
                 m->stream, TIMEOUT_MS / 1000);
        goto fail;
    }
    read_parameters(m, mod);
    if (idr != NULL)
        dbus_message_unref(idr);
    return 0;
fail:
    if (idr != NULL)
        dbus_message_unref(idr);
    dbus_error_free(&err);
    mutter_close(m);
    return -ENODEV;
}

int mutter_fd(struct mutter *m)
{
    int fd = -1;

    if (m->bus == NULL || !dbus_connection_get_unix_fd(m->bus, &fd))
        return -1;
    return fd;
}

int mutter_pump(struct mutter *m)
{
    if (m->bus != NULL && !m->closed)
        read_bus(m, 0);
    return m->bus == NULL || m->closed ? -EIO : 0;
}

int mutter_notify(struct mutter *m, const char *method, int first_type, ...)
{
    DBusMessage *msg;
    va_list ap;
    int ok;

    if (mutter_pump(m) != 0 || m->rd[0] == '\0')
        return -EIO;
    msg = dbus_message_new_method_call(RD_NAME, m->rd, RD_SESSION, method);
    if (msg == NULL)
        return -ENOMEM;
    va_start(ap, first_type);
    ok = dbus_message_append_args_valist(msg, first_type, ap);
    va_end(ap);
    dbus_message_set_no_reply(msg, TRUE);
    ok = ok && dbus_connection_send(m->bus, msg, NULL);
    dbus_message_unref(msg);
    if (!ok)
        return -ENOMEM;
    dbus_connection_flush(m->bus);
    return 0;
}

void mutter_close(struct mutter *m)
{
    DBusMessage *msg = NULL;

    if (m->bus == NULL)
        return;
    if (!m->closed && (m->rd[0] != '\0' || m->sc[0] != '\0'))
        msg = m->rd[0] != '\0'
                  ? dbus_message_new_method_call(RD_NAME, m->rd, RD_SESSION,
                                                 "Stop")
                  : dbus_message_new_method_call(SC_NAME, m->sc, SC_SESSION,
                                                 "Stop");
    if (msg != NULL) {
        dbus_message_set_no_reply(msg, TRUE);
        dbus_connection_send(m->bus, msg, NULL);
        dbus_message_unref(msg);
        dbus_connection_flush(m->bus);
    }
    dbus_connection_close(m->bus);
    dbus_connection_unref(m->bus);
    memset(m, 0, sizeof(*m));
}
