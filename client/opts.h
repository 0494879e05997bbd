/*
 * homedesk-viewer's options: the table behind --help, --help-man, the
 * environment and viewer.conf, filled into a struct view_opts.
 *
 * Threads: main's, before anything starts.
 */
#ifndef VIEW_OPTS_H
#define VIEW_OPTS_H

#include <stdbool.h>

#include "config.h"

#define VIEW_OPTS_MAX 40 /* entries of the table, its end included */

struct view_opts {
    const char *server, *key, *direct, *password_file, *config_dir;
    const char *out, *log_level, *log_file, *drop_to;
    int frames, verbose, timeout_s, answer_ms, keyboard;
    const char *relay;
    bool fullscreen, headless, force_relay, help, help_man, version, no_overlay,
        no_udp, no_tcp;
    bool no_clipboard, no_audio, allow_plain_server;
    const char *ls, *get, *put, *to;
};

/*
 * The whole table into t (VIEW_OPTS_MAX entries), its end included,
 * pointing into o; returns the number of entries.  hd_config keeps a
 * pointer to t: it must live as long.
 */
int view_opts_table(struct view_opts *o, struct hd_opt *t);

#endif
