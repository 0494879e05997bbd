/* The mailbox of clipboard backends with a thread.  See mailbox.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/clipboard/mailbox.h"

/* ---- the mailbox of backends with a thread --------------------------------
 */

int clip_mailbox_init(struct clip_mailbox *m)
{
    memset(m, 0, sizeof(*m));
    if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    pthread_mutex_init(&m->mu, NULL);
    return 0;
}

static void mailbox_wake(struct clip_mailbox *m)
{
    char b = 1;

    if (write(m->wake[1], &b, 1) < 0) {
        /* full pipe: the thread is awake anyway */
    }
}

void clip_mailbox_put(struct clip_mailbox *m, char *text, size_t n)
{
    pthread_mutex_lock(&m->mu);
    free(m->in);
    m->in = text;
    m->in_n = n;
    pthread_mutex_unlock(&m->mu);
    mailbox_wake(m);
}

void clip_mailbox_quit(struct clip_mailbox *m)
{
    pthread_mutex_lock(&m->mu);
    m->quit = 1;
    pthread_mutex_unlock(&m->mu);
    mailbox_wake(m);
}

int clip_mailbox_take(struct clip_mailbox *m, char **text, size_t *n)
{
    char drain[64];
    int quit;

    while (read(m->wake[0], drain, sizeof(drain)) > 0)
        ;
    pthread_mutex_lock(&m->mu);
    quit = m->quit;
    *text = m->in;
    *n = m->in_n;
    m->in = NULL;
    m->in_n = 0;
    pthread_mutex_unlock(&m->mu);
    return quit;
}

void clip_mailbox_cleanup(struct clip_mailbox *m)
{
    close(m->wake[0]);
    close(m->wake[1]);
    pthread_mutex_destroy(&m->mu);
    free(m->in);
    m->in = NULL;
}
