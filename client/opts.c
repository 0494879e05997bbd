/*
 * homedesk-viewer's options (opts.h), in groups, in the order --help
 * lists them.
 */
#include <stdbool.h>
#include <string.h>

#include "client/keys.h"
#include "client/opts.h"

/* Help, version, logging. */
static void opts_general(struct view_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        { .names = "h,help",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "show this help and exit",
          .b = &o->help },
        { .names = "V,version",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "show the version and exit",
          .b = &o->version },
        HD_OPT_HELP_MAN(&o->help_man),
        { .names = "v,verbose",
          .type = HD_OPT_COUNT,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "more log output (-vv for trace)",
          .i = &o->verbose },
        { .names = "log-level",
          .env = "HOMEDESK_LOG_LEVEL",
          .type = HD_OPT_STRING,
          .arg = "LEVEL",
          .help = "error, warn, info, debug or trace",
          .s = &o->log_level },
        HD_OPT_LOG_FILE(&o->log_file),
    };

    HD_OPTS_ADD(t, n, VIEW_OPTS_MAX, opts);
}

/* The host, the server that vouches for it, the password, the configuration. */
static void opts_host(struct view_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        HD_OPT_SERVER(&o->server),
        HD_OPT_KEY(&o->key),
        { .names = "allow-plain-server",
          .env = "HOMEDESK_ALLOW_PLAIN_SERVER",
          .type = HD_OPT_FLAG,
          .help = "with --key, still talk to a server that offers no "
                  "secure channel (old hbbs); host keys stay verified",
          .b = &o->allow_plain_server },
        { .names = "direct",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "HOST[:PORT]",
          .help = "connect to a host directly, without a server (port "
                  "21120 by default; its key is pinned in known_hosts on "
                  "first use)",
          .s = &o->direct },
        { .names = "password-file",
          .type = HD_OPT_STRING,
          .arg = "FILE",
          .help = "read the host's password from FILE (else "
                  "HOMEDESK_PASSWORD, else a prompt)",
          .s = &o->password_file },
        { .names = "config-dir",
          .env = "HOMEDESK_CONFIG_DIR",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "DIR",
          .help = "configuration directory (viewer.conf, known_hosts; "
                  "default $XDG_CONFIG_HOME/homedesk)",
          .s = &o->config_dir },
    };

    HD_OPTS_ADD(t, n, VIEW_OPTS_MAX, opts);
}

/* The window. */
static void opts_window(struct view_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        { .names = "f,fullscreen",
          .type = HD_OPT_FLAG,
          .help = "start in fullscreen",
          .b = &o->fullscreen },
        { .names = "keyboard",
          .env = "HOMEDESK_KEYBOARD",
          .type = HD_OPT_CHOICE,
          .def = "legacy",
          .arg = "MODE",
          .help = "legacy or translate: the character typed here arrives "
                  "(translate sends it as text, as RustDesk does); map: "
                  "each key by its place, the host's layout decides what "
                  "it types (also in the menu, Ctrl+Alt+M)",
          .choices = kbd_mode_names,
          .i = &o->keyboard },
        { .names = "drop-to",
          .env = "HOMEDESK_DROP_TO",
          .type = HD_OPT_STRING,
          .def = "~/Downloads",
          .arg = "DIR",
          .help = "the host's folder for files dropped on the window (~ is "
                  "the host user's home)",
          .s = &o->drop_to },
        { .names = "no-overlay",
          .type = HD_OPT_FLAG,
          .help = "hide the stats overlay at start",
          .b = &o->no_overlay },
    };

    HD_OPTS_ADD(t, n, VIEW_OPTS_MAX, opts);
}

/* The paths to the host, and what the session shares. */
static void opts_paths(struct view_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        HD_OPT_RELAY(&o->relay),
        { .names = "force-relay",
          .type = HD_OPT_FLAG,
          .help = "always go through the relay (no direct attempt)",
          .b = &o->force_relay },
        { .names = "no-udp",
          .type = HD_OPT_FLAG,
          .help = "no UDP hole punching (TCP paths and the relay only)",
          .b = &o->no_udp },
        { .names = "no-tcp",
          .type = HD_OPT_FLAG,
          .help = "no direct TCP attempt (LAN, punched, mapped port, IPv6): "
                  "UDP and the relay only",
          .b = &o->no_tcp },
        { .names = "no-clipboard",
          .env = "HOMEDESK_NO_CLIPBOARD",
          .type = HD_OPT_FLAG,
          .help = "do not share the clipboard with the host",
          .b = &o->no_clipboard },
        { .names = "no-audio",
          .env = "HOMEDESK_NO_AUDIO",
          .type = HD_OPT_FLAG,
          .help = "do not play the host's sound",
          .b = &o->no_audio },
    };

    HD_OPTS_ADD(t, n, VIEW_OPTS_MAX, opts);
}

/* No window: file transfer, --headless frames. */
static void opts_batch(struct view_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        { .names = "ls",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "PATH",
          .help = "no window: list a directory of the host",
          .s = &o->ls },
        { .names = "get",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "PATH",
          .help = "no window: copy a file or directory of the host into "
                  "--to (default .)",
          .s = &o->get },
        { .names = "put",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "PATH",
          .help = "no window: copy a file or directory to the host's --to "
                  "directory (~ is the host user's home)",
          .s = &o->put },
        { .names = "to",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "DIR",
          .help = "where --get and --put copy to",
          .s = &o->to },
        { .names = "headless",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "no window: decode --frames frames, write the last to "
                  "--out as PNG, print a stats line",
          .b = &o->headless },
        { .names = "frames",
          .type = HD_OPT_INT,
          .flags = HD_OPT_ARGV_ONLY,
          .def = "30",
          .arg = "N",
          .help = "with --headless: frames to decode",
          .min = 1,
          .max = 1000000,
          .i = &o->frames },
        { .names = "timeout",
          .type = HD_OPT_INT,
          .flags = HD_OPT_ARGV_ONLY,
          .def = "60",
          .arg = "SECONDS",
          .help = "with --headless: give up after this long (a still screen "
                  "sends few frames)",
          .min = 1,
          .max = 86400,
          .i = &o->timeout_s },
        { .names = "answer-timeout-ms", /* tests */
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN | HD_OPT_ARGV_ONLY,
          .def = "20000",
          .min = 100,
          .max = 600000,
          .i = &o->answer_ms },
        { .names = "out",
          .type = HD_OPT_STRING,
          .flags = HD_OPT_ARGV_ONLY,
          .arg = "DIR",
          .help = "with --headless: where to write frame.png",
          .s = &o->out },
    };

    HD_OPTS_ADD(t, n, VIEW_OPTS_MAX, opts);
}

int view_opts_table(struct view_opts *o, struct hd_opt *t)
{
    int n = 0;

    opts_general(o, t, &n);
    opts_host(o, t, &n);
    opts_window(o, t, &n);
    opts_paths(o, t, &n);
    opts_batch(o, t, &n);
    memset(&t[n], 0, sizeof(t[n]));
    return n + 1;
}
