/*
 * homedesk-host's option table (see opts.h): every option of the command
 * line, the environment and host-settings.conf, in three groups appended
 * one after the other (what the host registers and who may log in, what
 * sessions get, and hidden ones for tests and tuning).
 */
#include <assert.h>
#include <string.h>

#include "host/opts.h"
#include "host/video.h"

#ifdef _WIN32
const char *const host_capture_names[] = { "auto", "dxgi", "gdi", "fake",
                                           NULL };
const char *const host_input_names[] = { "auto", "sendinput", "fake", "none",
                                         NULL };
const char *const host_clip_names[] = { "auto", "win32", "fake", NULL };
const char *const host_audio_names[] = { "auto", "wasapi", "fake", NULL };
#else
const char *const host_capture_names[] = { "auto",     "x11",  "wlr",
                                           "pipewire", "fake", NULL };
const char *const host_input_names[] = {
    "auto", "xtest", "wlr", "remotedesktop", "fake", "none", NULL
};
const char *const host_clip_names[] = { "auto", "wlr", "x11", "fake", NULL };
const char *const host_audio_names[] = { "auto", "pulse", "fake", NULL };
#endif
static const char *const reg_tcp_names[] = { "auto", "always", "never", NULL };

/* Where the host registers, who may log in, what it shares. */
static void opts_session(struct host_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        HD_OPT_SERVER(&o->server),
        HD_OPT_KEY(&o->key),
        { .names = "password",
          .env = "HOMEDESK_HOST_PASSWORD",
          .type = HD_OPT_STRING,
          .arg = "PW",
          .help = "set the permanent password (stored salted and hashed)",
          .s = &o->password },
        { .names = "password-file",
          .env = "HOMEDESK_HOST_PASSWORD_FILE",
          .type = HD_OPT_STRING,
          .arg = "FILE",
          .help = "set the permanent password from the first line of FILE",
          .s = &o->password_file },
        { .names = "no-one-time-password",
          .env = "HOMEDESK_NO_ONE_TIME_PASSWORD",
          .type = HD_OPT_FLAG,
          .help = "do not make a one-time password at start",
          .b = &o->no_otp },
        { .names = "display",
          .env = "HOMEDESK_DISPLAY",
          .type = HD_OPT_STRING,
          .arg = ":N",
          .help = "X display to share (default $DISPLAY)",
          .s = &o->display },
        { .names = "capture",
          .env = "HOMEDESK_CAPTURE",
          .type = HD_OPT_CHOICE,
          .def = "auto",
          .choices = host_capture_names,
#ifdef _WIN32
          .help = "screen capture backend (auto: dxgi, falling back to gdi "
                  "where Desktop Duplication is unavailable)",
#else
          .help = "screen capture backend (auto: in a Wayland session "
                  "unless --display is given, pipewire on GNOME, else wlr; "
                  "x11 otherwise)",
#endif
          .i = &o->capture },
        { .names = "input",
          .env = "HOMEDESK_INPUT",
          .type = HD_OPT_CHOICE,
          .def = "auto",
          .choices = host_input_names,
          .help = "input injection backend (auto: wlr with the wlr "
                  "capture, remotedesktop with the pipewire capture, else "
                  "xtest; none: view only)",
          .i = &o->input },
        { .names = "listen",
          .env = "HOMEDESK_LISTEN",
          .type = HD_OPT_INT,
          .def = "21120",
          .arg = "PORT",
          .min = 0,
          .max = 65535,
          .help = "TCP port for direct (LAN/IP) connections; if the default "
                  "is busy a free port is used; 0 = any free port",
          .i = &o->listen_port },
        HD_OPT_RELAY(&o->relay),
        { .names = "no-upnp",
          .env = "HOMEDESK_NO_UPNP",
          .type = HD_OPT_FLAG,
          .help = "do not ask the router (NAT-PMP, UPnP-IGD) to forward a "
                  "public port to --listen",
          .b = &o->no_upnp },
    };

    HD_OPTS_ADD(t, n, OPTS_MAX, opts);
}

/* What sessions get, the config directory, logging, help. */
static void opts_features(struct host_opts *o, struct hd_opt *t, int *n)
{
    const struct hd_opt opts[] = {
        { .names = "no-clipboard",
          .env = "HOMEDESK_NO_CLIPBOARD",
          .type = HD_OPT_FLAG,
          .help = "do not share the clipboard with viewers",
          .b = &o->no_clipboard },
        { .names = "no-audio",
          .env = "HOMEDESK_NO_AUDIO",
          .type = HD_OPT_FLAG,
          .help = "do not send the desktop's sound to viewers",
          .b = &o->no_audio },
        { .names = "audio-source",
          .env = "HOMEDESK_AUDIO_SOURCE",
          .type = HD_OPT_STRING,
          .arg = "NAME",
          .help = "sound to send: a sound server source (default: the "
                  "monitor of the default output); on Windows a device "
                  "whose name contains NAME (default: what the default "
                  "output plays), or default-input",
          .s = &o->audio_source },
        { .names = "clipboard",
          .env = "HOMEDESK_CLIPBOARD",
          .type = HD_OPT_CHOICE,
          .def = "auto",
          .choices = host_clip_names,
          .help = "clipboard backend (auto: wlr with the wlr capture, x11 "
                  "with the x11 capture or "
                  "an explicit --display)",
          .i = &o->clipboard },
        { .names = "audio",
          .env = "HOMEDESK_AUDIO",
          .type = HD_OPT_CHOICE,
          .def = "auto",
          .choices = host_audio_names,
          .help = "desktop audio backend (auto: pulse; on Windows "
                  "wasapi)",
          .i = &o->audio },
        { .names = "no-file-transfer",
          .env = "HOMEDESK_NO_FILE_TRANSFER",
          .type = HD_OPT_FLAG,
          .help = "refuse file transfer sessions",
          .b = &o->no_file_transfer },
        { .names = "config-dir",
          .env = "HOMEDESK_CONFIG_DIR",
          .type = HD_OPT_STRING,
          .arg = "DIR",
          .help = "identity and settings (default "
                  "$XDG_CONFIG_HOME/homedesk)",
          .s = &o->config_dir },
        { .names = "show-id",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "print the ID and exit",
          .b = &o->show_id },
        { .names = "selftest",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "try each backend (capture, input, clipboard, audio, "
                  "network), print what works and exit",
          .b = &o->selftest },
        { .names = "allow-unencrypted",
          .env = "HOMEDESK_ALLOW_UNENCRYPTED",
          .type = HD_OPT_FLAG,
          .help = "accept viewers that do not encrypt (not recommended)",
          .b = &o->allow_unencrypted },
        { .names = "fps",
          .env = "HOMEDESK_FPS",
          .type = HD_OPT_INT,
          .def = "30",
          .min = 1,
          .max = VIDEO_MAX_FPS,
          .help = "maximum frames per second",
          .i = &o->fps },
        { .names = "v,verbose",
          .type = HD_OPT_COUNT,
          .help = "more log output (-vv for trace)",
          .i = &o->verbose },
        { .names = "log-level",
          .env = "HOMEDESK_LOG_LEVEL",
          .type = HD_OPT_STRING,
          .arg = "LEVEL",
          .help = "error, warn, info, debug or trace",
          .s = &o->log_level },
        HD_OPT_LOG_FILE(&o->log_file),
        { .names = "h,help",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "show this help",
          .b = &o->help },
        { .names = "V,version",
          .type = HD_OPT_FLAG,
          .flags = HD_OPT_ARGV_ONLY,
          .help = "show the version and exit",
          .b = &o->version },
        HD_OPT_HELP_MAN(&o->help_man),
    };

    HD_OPTS_ADD(t, n, OPTS_MAX, opts);
}

/* For tests and tuning (not in --help). */
static void opts_hidden(struct host_opts *o, int *reg_tcp, struct hd_opt *t,
                        int *n)
{
    const struct hd_opt opts[] = {
        { .names = "register-interval-ms",
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN,
          .def = "12000",
          .min = 50,
          .max = 600000,
          .i = &o->reg_interval_ms },
        { .names = "register-tcp",
          .type = HD_OPT_CHOICE,
          .flags = HD_OPT_HIDDEN,
          .def = "auto",
          .choices = reg_tcp_names,
          .i = reg_tcp },
        { .names = "idle-timeout-ms",
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN,
          .def = "30000",
          .min = 100,
          .max = 3600000,
          .i = &o->idle_ms },
        { .names = "fake-width",
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN,
          .def = "0",
          .min = 0,
          .max = 8192,
          .i = &o->fake_width },
        { .names = "fake-height",
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN,
          .def = "0",
          .min = 0,
          .max = 8192,
          .i = &o->fake_height },
        { .names = "fake-interval-ms",
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN,
          .def = "0",
          .min = 0,
          .max = 100000,
          .i = &o->fake_interval_ms },
        { .names = "fake-frames",
          .type = HD_OPT_INT,
          .flags = HD_OPT_HIDDEN,
          .def = "0",
          .min = 0,
          .max = 1000000000,
          .i = &o->fake_frames },
    };

    HD_OPTS_ADD(t, n, OPTS_MAX, opts);
}

/* The whole table into t (OPTS_MAX entries), its end included; returns
 * the number of entries. */
int host_opts_table(struct host_opts *o, int *reg_tcp, struct hd_opt *t)
{
    int n = 0;

    opts_session(o, t, &n);
    opts_features(o, t, &n);
    opts_hidden(o, reg_tcp, t, &n);
    memset(&t[n], 0, sizeof(t[n]));
    return n + 1;
}
