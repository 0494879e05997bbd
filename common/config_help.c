/*
 * The help text (--help) and the man page text of an option table
 * (config.h), from the same fields the parser uses, so the three never
 * disagree.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define HELP_COL   28 /* where help text starts */
#define HELP_WIDTH 79

/* ---- help ---- */

/* Write text word by word from column col, wrapping to indent. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
    const char *p = text;

    while (*p != '\0') {
        size_t w;

        while (*p == ' ')
            p++;
        w = strcspn(p, " ");
        if (w == 0)
            break;
        if (col > indent && col + 1 + (int)w > HELP_WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)w, p);
        col += (int)w;
        p += w;
    }
}

/* The parts of an option's entry in --help and in the man page. */
struct opt_text {
    char names[160]; /* "-p, --port" */
    char arg[160];   /* " N", " auto|x11", or empty for a flag */
    char text[1024]; /* the sentence, range and default */
    char env[256];   /* "Env: A, B", or empty */
};

static void opt_text(const struct hd_opt *o, struct opt_text *t)
{
    const char *list, *item, *q, *help, *end;
    char range[64];
    size_t n, used = 0;

    t->names[0] = '\0';
    /* short names first, then long ones, as "-p, --port" */
    for (int pass = 0; pass < 2; pass++) {
        list = o->names;
        while (config_next_item(&list, &item, &n)) {
            if ((n == 1) != (pass == 0) || used >= sizeof(t->names))
                continue;
            used += (size_t)snprintf(t->names + used, sizeof(t->names) - used,
                                     "%s%s%.*s", used ? ", " : "",
                                     n == 1 ? "-" : "--", (int)n, item);
        }
    }
    if (o->type == HD_OPT_FLAG || o->type == HD_OPT_COUNT)
        t->arg[0] = '\0';
    else if (o->arg != NULL)
        snprintf(t->arg, sizeof(t->arg), " %s", o->arg);
    else if (o->type == HD_OPT_CHOICE) {
        t->arg[0] = ' ';
        config_choices_text(o, "|", t->arg + 1, sizeof(t->arg) - 1);
    } else
        snprintf(t->arg, sizeof(t->arg), " %s",
                 o->type == HD_OPT_STRING ? "STR"
                 : o->type == HD_OPT_SIZE ? "SIZE"
                                          : "N");
    config_range_text(o, range, sizeof(range));
    /* a string default is quoted: "Default: .." said nothing */
    q = o->type == HD_OPT_STRING ? "'" : "";
    help = o->help ? o->help : "";
    /* "frames to decode Range: ..." ran two sentences together */
    end =
        help[0] != '\0' && help[strlen(help) - 1] != '.' && (range[0] || o->def)
            ? "."
            : "";
    snprintf(t->text, sizeof(t->text), "%s%s%s%s%s%s%s%s%s%s", help, end,
             range[0] ? " Range: " : "", range, range[0] ? "." : "",
             o->def ? " Default: " : "", o->def ? q : "", o->def ? o->def : "",
             o->def ? q : "", o->def ? "." : "");
    t->env[0] = '\0';
    used = 0;
    list = o->env;
    while (list != NULL && config_next_item(&list, &item, &n) &&
           used < sizeof(t->env))
        used += (size_t)snprintf(t->env + used, sizeof(t->env) - used, "%s%.*s",
                                 used ? ", " : "Env: ", (int)n, item);
}

void hd_config_print_help(const struct hd_opt *opts, const char *program,
                          const char *usage, FILE *f)
{
    fprintf(f, "Usage: %s %s\n\nOptions:\n", program,
            usage ? usage : "[OPTIONS]");
    for (const struct hd_opt *o = opts; o->names != NULL; o++) {
        struct opt_text t;
        int col;

        if (o->flags & HD_OPT_HIDDEN)
            continue;
        opt_text(o, &t);
        /* long-only options line up with the long names of the others */
        col = fprintf(f, "  %s%s%s", t.names[1] == '-' ? "    " : "", t.names,
                      t.arg);
        if (col > HELP_COL - 2) {
            fprintf(f, "\n%*s", HELP_COL, "");
        } else {
            fprintf(f, "%*s", HELP_COL - col, "");
        }
        wrap(f, t.text, HELP_COL, HELP_COL);
        if (t.env[0] != '\0') {
            fprintf(f, "\n%*s", HELP_COL, "");
            wrap(f, t.env, HELP_COL, HELP_COL);
        }
        fputc('\n', f);
    }
}

void hd_config_man_text(FILE *f, const char *pre, const char *s, bool minus,
                        const char *post)
{
    fputs(pre, f);
    if (*s == '.' || *s == '\'')
        fputs("\\&", f); /* not a request */
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-' && minus)
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
    fputs(post, f);
}

void hd_config_print_man(const struct hd_opt *opts, FILE *f)
{
    for (const struct hd_opt *o = opts; o->names != NULL; o++) {
        struct opt_text t;

        if (o->flags & HD_OPT_HIDDEN)
            continue;
        opt_text(o, &t);
        hd_config_man_text(f, ".TP\n\\fB", t.names, true, "\\fR");
        if (t.arg[0] != '\0')
            hd_config_man_text(f, " \\fI", t.arg + 1, true, "\\fR");
        hd_config_man_text(f, "\n", t.text, false, "\n");
        if (t.env[0] != '\0') /* without "Env: " */
            hd_config_man_text(f, ".br\nEnvironment: \\fB", t.env + 5, false,
                               "\\fR\n");
    }
}
