/*
 * hd-xdnd: drops files on an X window as a file manager would (the XDND
 * protocol, version 5), for the end-to-end tests.
 *
 *   hd-xdnd WINDOW X Y PATH...     (on $DISPLAY)
 *
 * WINDOW is the target's top-level window id (decimal or 0x hex), X Y
 * the root position of the drop.  It owns the XdndSelection, sends the
 * target XdndEnter (offering text/uri-list), XdndPosition, waits for
 * XdndStatus accepting the drop, sends XdndDrop, hands the list of
 * file:// URIs over when the target asks for the selection, and waits for
 * XdndFinished.  Exit status 0 when the target accepted and finished, 1
 * otherwise (with a line on stderr saying which step failed), 2 on bad
 * arguments.  Gives up after 10 s.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xcb/xcb.h>

#define WAIT_MS 10000

static xcb_connection_t *c;
static xcb_window_t me, target;
static xcb_atom_t A_AWARE, A_SELECTION, A_ENTER, A_POSITION, A_STATUS, A_DROP,
    A_FINISHED, A_COPY, A_URI_LIST;
static char uris[16384];

static xcb_atom_t atom(const char *name)
{
    xcb_intern_atom_reply_t *r = xcb_intern_atom_reply(
        c, xcb_intern_atom(c, 0, (uint16_t)strlen(name), name), NULL);
    xcb_atom_t a = r != NULL ? r->atom : XCB_NONE;

    free(r);
    return a;
}

static void client_message(xcb_atom_t type, uint32_t d1, uint32_t d2,
                           uint32_t d3, uint32_t d4)
{
    xcb_client_message_event_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.response_type = XCB_CLIENT_MESSAGE;
    ev.format = 32;
    ev.window = target;
    ev.type = type;
    ev.data.data32[0] = me;
    ev.data.data32[1] = d1;
    ev.data.data32[2] = d2;
    ev.data.data32[3] = d3;
    ev.data.data32[4] = d4;
    xcb_send_event(c, 0, target, XCB_EVENT_MASK_NO_EVENT, (const char *)&ev);
    xcb_flush(c);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The target asks for the selection: the URI list, as text/uri-list. */
static void answer(const xcb_selection_request_event_t *rq)
{
    xcb_selection_notify_event_t n;

    memset(&n, 0, sizeof(n));
    n.response_type = XCB_SELECTION_NOTIFY;
    n.time = rq->time;
    n.requestor = rq->requestor;
    n.selection = rq->selection;
    n.target = rq->target;
    n.property = XCB_NONE;
    if (rq->selection == A_SELECTION && rq->target == A_URI_LIST) {
        xcb_atom_t prop = rq->property != XCB_NONE ? rq->property : rq->target;

        xcb_change_property(c, XCB_PROP_MODE_REPLACE, rq->requestor, prop,
                            A_URI_LIST, 8, (uint32_t)strlen(uris), uris);
        n.property = prop;
    }
    xcb_send_event(c, 0, rq->requestor, XCB_EVENT_MASK_NO_EVENT,
                   (const char *)&n);
    xcb_flush(c);
}

/*
 * Handle events until a client message of type want arrives (its event,
 * malloc'd) or the deadline passes (NULL).  Selection requests are
 * answered meanwhile.
 */
static xcb_client_message_event_t *wait_for(xcb_atom_t want, long long until)
{
    struct pollfd p = { .fd = xcb_get_file_descriptor(c), .events = POLLIN };
    xcb_generic_event_t *ev;

    for (;;) {
        while ((ev = xcb_poll_for_event(c)) != NULL) {
            uint8_t t = ev->response_type & 0x7f;

            if (t == XCB_SELECTION_REQUEST)
                answer((xcb_selection_request_event_t *)ev);
            if (t == XCB_CLIENT_MESSAGE &&
                ((xcb_client_message_event_t *)ev)->type == want)
                return (xcb_client_message_event_t *)ev;
            free(ev);
        }
        if (xcb_connection_has_error(c) || now_ms() >= until)
            return NULL;
        poll(&p, 1, 50);
    }
}

/* Append PATH as a file:// URI (unreserved characters as they are, the
 * rest %-escaped). */
static int add_uri(const char *path)
{
    size_t n = strlen(uris);
    int w = snprintf(uris + n, sizeof(uris) - n, "file://");

    for (const unsigned char *p = (const unsigned char *)path; *p && w > 0;
         p++) {
        n = strlen(uris);
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("/-._~", *p) != NULL)
            w = snprintf(uris + n, sizeof(uris) - n, "%c", *p);
        else
            w = snprintf(uris + n, sizeof(uris) - n, "%%%02X", *p);
    }
    n = strlen(uris);
    w = snprintf(uris + n, sizeof(uris) - n, "\r\n");
    return w > 0 && strlen(uris) + 1 < sizeof(uris) ? 0 : -1;
}

static int fail(const char *what)
{
    fprintf(stderr, "hd-xdnd: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    xcb_screen_t *scr;
    xcb_client_message_event_t *ev;
    xcb_get_property_reply_t *aware;
    long long until = now_ms() + WAIT_MS;
    uint32_t mask = XCB_EVENT_MASK_PROPERTY_CHANGE;
    int x, y, accepted;

    if (argc < 5) {
        fprintf(stderr, "usage: hd-xdnd WINDOW X Y PATH...\n");
        return 2;
    }
    target = (xcb_window_t)strtoul(argv[1], NULL, 0);
    x = atoi(argv[2]);
    y = atoi(argv[3]);
    for (int i = 4; i < argc; i++)
        if (add_uri(argv[i]) != 0)
            return fail("too many paths");
    c = xcb_connect(NULL, NULL);
    if (xcb_connection_has_error(c))
        return fail("cannot connect to the X display in $DISPLAY");
    scr = xcb_setup_roots_iterator(xcb_get_setup(c)).data;
    me = xcb_generate_id(c);
    xcb_create_window(c, XCB_COPY_FROM_PARENT, me, scr->root, -10, -10, 1, 1, 0,
                      XCB_WINDOW_CLASS_INPUT_ONLY, XCB_COPY_FROM_PARENT,
                      XCB_CW_EVENT_MASK, &mask);
    A_AWARE = atom("XdndAware");
    A_SELECTION = atom("XdndSelection");
    A_ENTER = atom("XdndEnter");
    A_POSITION = atom("XdndPosition");
    A_STATUS = atom("XdndStatus");
    A_DROP = atom("XdndDrop");
    A_FINISHED = atom("XdndFinished");
    A_COPY = atom("XdndActionCopy");
    A_URI_LIST = atom("text/uri-list");
    aware = xcb_get_property_reply(
        c, xcb_get_property(c, 0, target, A_AWARE, XCB_ATOM_ATOM, 0, 1), NULL);
    if (aware == NULL || xcb_get_property_value_length(aware) < 4) {
        free(aware);
        return fail("the target window has no XdndAware property (does it "
                    "take drops?)");
    }
    free(aware);
    xcb_set_selection_owner(c, me, A_SELECTION, XCB_CURRENT_TIME);
    client_message(A_ENTER, 5u << 24, A_URI_LIST, XCB_NONE, XCB_NONE);
    client_message(A_POSITION, 0, (uint32_t)x << 16 | (uint32_t)y,
                   XCB_CURRENT_TIME, A_COPY);
    if ((ev = wait_for(A_STATUS, until)) == NULL)
        return fail("no XdndStatus from the target");
    accepted = ev->data.data32[1] & 1;
    free(ev);
    if (!accepted)
        return fail("the target refused the drop (XdndStatus)");
    client_message(A_DROP, 0, XCB_CURRENT_TIME, 0, 0);
    if ((ev = wait_for(A_FINISHED, until)) == NULL)
        return fail("no XdndFinished from the target");
    accepted = ev->data.data32[1] & 1;
    free(ev);
    xcb_disconnect(c);
    if (!accepted)
        return fail("the target finished without taking the drop");
    printf("dropped\n");
    return 0;
}
