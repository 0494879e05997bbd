/*
 * Helpers shared by config.c (the parser) and config_help.c (the help and
 * man page printers); other modules use config.h.  Reentrant.
 */
#ifndef HD_CONFIG_INT_H
#define HD_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Next comma-separated item of *list: sets *item, *len; false at the end. */
bool config_next_item(const char **list, const char **item, size_t *len);

/* The range of a number option ("1-65535", "-1 to 100"), or "". */
void config_range_text(const struct hd_opt *o, char *buf, size_t cap);

/* The choices of a choice option joined with sep. */
void config_choices_text(const struct hd_opt *o, const char *sep, char *buf,
                         size_t cap);

#endif
