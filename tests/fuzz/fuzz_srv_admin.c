/*
 * libFuzzer target for what the admin port parses itself (libmicrohttpd
 * parses the HTTP): the Host header check, the bearer token check and the
 * JSON string escaping that every peer-chosen string (an ID, a reason)
 * goes through.  Checks: no crash; a value the Host check allows is an IP
 * literal, localhost or the allowed name; the token check accepts exactly
 * "Bearer TOKEN"; an escaped string is one JSON string (quoted, no raw
 * control byte, no unescaped quote).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/admin.h"
#include "server/textbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const char *s)
{
    struct textbuf t;

    textbuf_init(&t, 0);
    textbuf_json_str(&t, s);
    if (t.err != 0 || t.len < 2 || t.buf[0] != '"' || t.buf[t.len - 1] != '"')
        abort();
    for (size_t i = 1; i + 1 < t.len; i++) {
        unsigned char c = (unsigned char)t.buf[i];

        if (c < 0x20 || c == 0x7f)
            abort();
        if (c == '\\') {
            i++; /* the escaped character is never the closing quote */
            if (i + 1 >= t.len)
                abort();
        } else if (c == '"') {
            abort();
        }
    }
    textbuf_cleanup(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const allowed[] = { "nas.home.arpa", NULL };
    static const char token[] = "0123456789abcdef0123";
    char *s = malloc(size + 1);

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)admin_host_allowed(s, allowed);
    if (admin_host_allowed(s, NULL) && s[0] != '\0' && s[0] != '[' &&
        strchr(s, '.') == NULL && strncasecmp(s, "localhost", 9) != 0)
        abort(); /* allowed without being an IPv4 literal or localhost */
    if (admin_bearer_ok(s, token) &&
        (strncasecmp(s, "Bearer ", 7) != 0 ||
         strncmp(s + 7, token, sizeof(token) - 1) != 0))
        abort();
    check_json(s);
    free(s);
    return 0;
}
