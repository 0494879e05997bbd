/*
 * homedesk-host --selftest: tries each backend the way the host would use
 * it (capture: open and grab a frame; input: open and put the pointer back
 * where it is; clipboard and audio: start and stop; the config directory:
 * write and remove a file; network: a UDP and a TCP socket on loopback) and
 * prints one line per part on stdout, "selftest: PART NAME: ok ..." or
 * "selftest: PART NAME: FAILED ...", so a first run on a new machine (a
 * real Windows PC) tells at once what works.  Returns the exit status: 0
 * when capture, input, the config directory and the network work.
 */
#ifndef HD_HOST_SELFTEST_H
#define HD_HOST_SELFTEST_H

#include "host/host.h"

int host_selftest(const struct host_opts *o, const char *capture,
                  const char *input, const char *clip, const char *audio,
                  const char *display, const char *dir);

#endif
