/*
 * homedesk-server's settings: the option tables of its three modes
 * (homedesk-server, and RustDesk's hbbs and hbbr when invoked by those
 * names), hbbs/hbbr's environment rules (.env, -c FILE, any spelling of a
 * variable), and the defaults each mode fills in after parsing.
 *
 * The tables point into a struct opts and are copied into an array the
 * caller owns (OPTS_MAX entries): struct hd_config keeps a pointer to
 * that array, so it must live as long as the hd_config (opts_given() and
 * hd_config_source() read it after parsing).
 *
 * Threads: main's, before the loop starts.
 */
#ifndef HD_SERVER_OPTS_H
#define HD_SERVER_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

enum role { ROLE_ALL = 0, ROLE_RENDEZVOUS, ROLE_RELAY };
enum mode { MODE_HOMEDESK, MODE_HBBS, MODE_HBBR };

/* Entries of the largest table, its end included. */
#define OPTS_MAX 64

struct opts {
    const char *data_dir, *key, *relay, *rendezvous_servers, *mask;
    const char *local_ip, *bind, *trusted_proxy, *software_url, *log_level;
    const char *config_file, *http_bind, *http_allow_host, *http_token_file;
    const char *log_file;
    int port, relay_port, http_port, role, serial, verbose;
    int first_frame_ms, idle_ms, max_conns;
    uint64_t rmem;
    bool always_relay, help, help_man, version, no_ws, no_key_exchange;
    double limit_speed, total_bw, single_bw, downgrade_threshold;
    int downgrade_start;
};

/* "all", "rendezvous", "relay" by enum role, NULL-terminated. */
extern const char *const opts_role_names[];

/*
 * The mode this program runs in, from its name (hbbs, hbbr) or its first
 * argument ("hbbs", "hbbr": removed from *argc / *argv).
 */
enum mode opts_detect_mode(int *argc, char ***argv);

/*
 * Parse the command line, the environment (and for hbbs/hbbr .env and -c
 * FILE) and --config FILE into *o, through the table that is copied into
 * table[OPTS_MAX] and kept by *cfg.  With --help the help (with
 * --help-man the man page's OPTIONS section) is printed and o->help set.
 * Returns 0, or a negative code after one message on stderr (the caller exits
 * with status 2).  cfg must be zeroed; the caller cleans it up in any case.
 */
int opts_parse(struct opts *o, enum mode mode, int argc, char **argv,
               struct hd_opt *table, struct hd_config *cfg);

/* The option whose first long name is name was set by the user (command
 * line, environment or config file). */
bool opts_given(const struct hd_config *cfg, const char *name);

#endif
