/*
 * The admin page's files, built into the program: tools/embed.sh turns
 * server/admin/index.html, admin.js and admin.css into the byte arrays of
 * a generated admin_page.c (in the build tree, never committed), so the
 * page needs nothing on disk and nothing from elsewhere.  Read-only data;
 * any thread.
 */
#ifndef HD_SERVER_ADMIN_PAGE_H
#define HD_SERVER_ADMIN_PAGE_H

#include <stddef.h>

struct admin_page_file {
    const char *path; /* the URL path: "/", "/admin.js", "/admin.css" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct admin_page_file admin_page_files[];
extern const size_t admin_page_nfiles;

#endif
