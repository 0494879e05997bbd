/*
 * homedesk-host's options: the table behind --help, --help-man, the
 * environment and host-settings.conf, filled into a struct host_opts
 * (host.h).  The choice names below are what HD_OPT_CHOICE options store
 * an index into.
 *
 * Threads: main's, before the loop starts.
 */
#ifndef HD_HOST_OPTS_H
#define HD_HOST_OPTS_H

#include "config.h"
#include "host/host.h"

#define OPT_LISTEN 8  /* index of --listen in the table */
#define OPTS_MAX   48 /* entries of the table, its end included */

/* Backend names of --capture, --input, --clipboard, --audio ("auto"
 * first), NULL-terminated. */
extern const char *const host_capture_names[];
extern const char *const host_input_names[];
extern const char *const host_clip_names[];
extern const char *const host_audio_names[];

/*
 * The whole table into t (OPTS_MAX entries), its end included, pointing
 * into o (and reg_tcp: --register-tcp's index); returns the number of
 * entries.  hd_config keeps a pointer to t: it must live as long.
 */
int host_opts_table(struct host_opts *o, int *reg_tcp, struct hd_opt *t);

#endif
