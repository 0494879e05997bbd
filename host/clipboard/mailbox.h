/*
 * For clipboard backends with a thread of their own on POSIX systems (x11,
 * wlr): how the loop hands that thread text and the request to stop.
 * Loop thread: put, quit; the backend's thread: take; any: init and
 * cleanup around the thread's life.
 */
#ifndef HD_HOST_CLIPBOARD_MAILBOX_H
#define HD_HOST_CLIPBOARD_MAILBOX_H

#include <pthread.h>
#include <stddef.h>

/* The latest text wins; the thread polls wake[0] (non-blocking). */
struct clip_mailbox {
    int wake[2];
    pthread_mutex_t mu; /* guards what follows */
    char *in;           /* text for the thread (NULL: none) */
    size_t in_n;
    int quit;
};

/* Set up (the pipe, the mutex).  0 or -errno; nothing to clean up then. */
int clip_mailbox_init(struct clip_mailbox *m);
/* Loop thread: hand over text (n bytes; the mailbox owns it now). */
void clip_mailbox_put(struct clip_mailbox *m, char *text, size_t n);
/* Loop thread: ask the thread to stop. */
void clip_mailbox_quit(struct clip_mailbox *m);
/* The backend's thread, after poll: empty the pipe and take the text
 * handed over, if any (*text: NULL or the caller's to free).  Returns 1
 * when asked to stop. */
int clip_mailbox_take(struct clip_mailbox *m, char **text, size_t *n);
/* Close the pipe and free what is left.  After init only. */
void clip_mailbox_cleanup(struct clip_mailbox *m);

#endif
