/*
 * Integration tests of file transfer: the real homedesk-host (fake
 * capture) and the real homedesk-viewer (--direct, --put/--get/--ls) on
 * loopback.  A tree with an empty file, a block-sized file, a 5 MB
 * random file, compressible text and names with spaces goes to the host
 * and comes back byte for byte with its modification times; a second
 * fetch skips every file; a file changed on the host is the only one
 * fetched again; a missing path, a destination that cannot be written and
 * a host started with --no-file-transfer fail with a clear message; a
 * large file shows progress on a terminal, and a download or upload that
 * broke off is continued by the next run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "tests/harness.h"
#include "tests/integration/support.h"

#define PASSWORD "xfer-Pa55word"
#define T        10000

static char tmp[256], prog_host[300], prog_viewer[300];

struct hostp {
    pid_t pid;
    uint16_t port;
    char log[400], out[400];
};

static int host_start(struct hostp *h, const char *name, const char *extra)
{
    char cmd[1600], buf[4096], *p;
    FILE *f;

    snprintf(h->log, sizeof(h->log), "%s/%s.log", tmp, name);
    snprintf(h->out, sizeof(h->out), "%s/%s.out", tmp, name);
    snprintf(cmd, sizeof(cmd),
             "exec '%s' --config-dir '%s/%s.cfg' --capture fake --input fake "
             "--listen 0 --password '%s' --no-one-time-password %s "
             ">'%s' 2>'%s'",
             prog_host, tmp, name, PASSWORD, extra ? extra : "", h->out,
             h->log);
    h->pid = fork();
    if (h->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (h->pid < 0 || !file_has(h->out, "listening on port ", T))
        return -1;
    f = fopen(h->out, "r");
    buf[f ? fread(buf, 1, sizeof(buf) - 1, f) : 0] = '\0';
    if (f)
        fclose(f);
    if ((p = strstr(buf, "listening on port ")) == NULL)
        return -1;
    h->port = (uint16_t)atoi(p + strlen("listening on port "));
    return 0;
}

static void host_stop(struct hostp *h)
{
    stop_pid(&h->pid);
}

/* Run the viewer against h with args; its stdout in out (NUL-ended). */
static int viewer(const struct hostp *h, const char *args, char *out,
                  size_t cap)
{
    char cmd[2048], path[400];
    FILE *f;
    int st;

    snprintf(path, sizeof(path), "%s/viewer.out", tmp);
    snprintf(cmd, sizeof(cmd),
             "HOMEDESK_PASSWORD='%s' timeout 60 '%s' --config-dir '%s/v.cfg' "
             "--direct 127.0.0.1:%u %s >'%s' 2>'%s/viewer.err'",
             PASSWORD, prog_viewer, tmp, (unsigned)h->port, args, path, tmp);
    st = system(cmd);
    f = fopen(path, "r");
    out[f ? fread(out, 1, cap - 1, f) : 0] = '\0';
    if (f)
        fclose(f);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    if (WEXITSTATUS(st) != 0) {
        snprintf(cmd, sizeof(cmd), "sed 's/^/# viewer: /' '%s/viewer.err'",
                 tmp);
        if (system(cmd) != 0)
            printf("# (no viewer.err)\n");
    }
    return WEXITSTATUS(st);
}

static void write_file(const char *rel, size_t n, int random, time_t mtime)
{
    char p[600];
    uint32_t x = (uint32_t)n * 2654435761u + 1;
    FILE *f;

    snprintf(p, sizeof(p), "%s/src/%s", tmp, rel);
    hd_files_mkparents(p);
    f = fopen(p, "wb");
    HT_CHECK(f != NULL);
    if (f == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        fputc(random ? (int)(x >> 16) & 0xff : "log line 42\n"[i % 12], f);
    }
    fclose(f);
    if (mtime > 0) {
        struct timeval tv[2] = { { mtime, 0 }, { mtime, 0 } };

        utimes(p, tv);
    }
}

static int trees_equal(const char *a, const char *b)
{
    char cmd[1400];

    snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s' >/dev/null", a, b);
    return system(cmd) == 0;
}

static time_t mtime_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_mtime : -1;
}

static struct hostp host;
static int host_ok;

static void round_trip(void)
{
    char out[8192], args[1200], a[600], b[600];

    write_file("empty", 0, 0, 0);
    write_file("text.txt", 300000, 0, 1000000000);
    write_file("rand.bin", 5u << 20, 1, 0);
    write_file("sub/block.bin", HD_FILE_BLOCK, 1, 0);
    write_file("dir with space/nested/leaf.txt", 1234, 0, 0);
    HT_CHECK(host_ok);

    /* up: to the host's dir "remote" as remote/src */
    snprintf(args, sizeof(args), "--put '%s/src' --to '%s/remote'", tmp, tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    printf("# put: %s", out);
    HT_CHECK(strstr(out, "xfer: files=5 skipped=0 bytes=5675186 ") != NULL);
    snprintf(a, sizeof(a), "%s/src", tmp);
    snprintf(b, sizeof(b), "%s/remote/src", tmp);
    HT_CHECK(trees_equal(a, b));
    snprintf(b, sizeof(b), "%s/remote/src/text.txt", tmp);
    HT_EQ_INT((int)mtime_of(b), 1000000000);
    HT_CHECK(file_has(host.log, "received 5 file(s) (5675186 bytes)", T));

    /* a listing; a name with terminal escapes (ESC, CSI as C1) is
     * printed defused */
    snprintf(a, sizeof(a),
             "%s/remote/src/evil\x1b]0;owned\a\xc2\x9b"
             "2J.txt",
             tmp);
    HT_EQ_INT(close(open(a, O_WRONLY | O_CREAT, 0644)), 0);
    snprintf(args, sizeof(args), "--ls '%s/remote/src'", tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    HT_CHECK(strstr(out, " rand.bin\n") != NULL);
    HT_CHECK(strstr(out, "d ") != NULL && strstr(out, " sub/\n") != NULL);
    HT_CHECK(strstr(out, " evil?]0;owned???2J.txt\n") != NULL);
    HT_CHECK(strchr(out, '\x1b') == NULL && strstr(out, "\xc2\x9b") == NULL);
    unlink(a);

    /* down again, into "back" */
    snprintf(args, sizeof(args), "--get '%s/remote/src' --to '%s/back'", tmp,
             tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    printf("# get: %s", out);
    HT_CHECK(strstr(out, "xfer: files=5 skipped=0 ") != NULL);
    snprintf(a, sizeof(a), "%s/src", tmp);
    snprintf(b, sizeof(b), "%s/back/src", tmp);
    HT_CHECK(trees_equal(a, b));
    snprintf(b, sizeof(b), "%s/back/src/text.txt", tmp);
    HT_EQ_INT((int)mtime_of(b), 1000000000);

    /* again: nothing to fetch */
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    HT_CHECK(strstr(out, "xfer: files=0 skipped=5 bytes=0 ") != NULL);

    /* one file changes on the host: only it comes again */
    snprintf(b, sizeof(b), "%s/remote/src/sub/block.bin", tmp);
    {
        FILE *f = fopen(b, "ab");

        HT_CHECK(f != NULL);
        if (f != NULL) {
            fputs("more", f);
            fclose(f);
        }
    }
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    printf("# get after a change: %s", out);
    HT_CHECK(strstr(out, "xfer: files=1 skipped=4 bytes=131076 ") != NULL);
    /* a single file, into the current directory's place */
    snprintf(args, sizeof(args), "--get '%s/remote/src/rand.bin' --to '%s'",
             tmp, tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    snprintf(a, sizeof(a), "%s/src/rand.bin", tmp);
    snprintf(b, sizeof(b), "%s/rand.bin", tmp);
    HT_CHECK(trees_equal(a, b));
    /* no part files left anywhere */
    snprintf(args, sizeof(args),
             "find '%s' -name '*.homedesk-part' | grep -q .", tmp);
    HT_CHECK(system(args) != 0);
}

static void failures(void)
{
    struct hostp h2;
    char out[4096], args[800], err[600];

    HT_CHECK(host_ok);
    snprintf(args, sizeof(args), "--get '%s/no-such-thing' --to '%s/x'", tmp,
             tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 1);
    snprintf(err, sizeof(err), "%s/viewer.err", tmp);
    HT_CHECK(file_has(err, "the host says:", 100));
    HT_CHECK(file_has(err, "no-such-thing: no such file", 100));
    /* a destination the host cannot write */
    snprintf(args, sizeof(args), "--put '%s/src/empty' --to /proc/hd-nope",
             tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 1);
    HT_CHECK(file_has(err, "the host says:", 100));
    /* a host that offers no file transfer */
    HT_EQ_INT(host_start(&h2, "h2", "--no-file-transfer"), 0);
    snprintf(args, sizeof(args), "--ls /");
    HT_EQ_INT(viewer(&h2, args, out, sizeof(out)), 1);
    HT_CHECK(file_has(err, "Not supported by this host", 100));
    HT_CHECK(file_has(h2.log, "refused file transfer", T));
    host_stop(&h2);
}

/* The size of path, or -1. */
static long long size_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Start the viewer against h with args (NULL-terminated) in the
 * background, stdout and stderr into tmp/bg.log (emptied first). */
static pid_t viewer_bg(const struct hostp *h, const char *const *args)
{
    static char port[40], cfg[300], logp[300];
    const char *argv[16];
    const char *const env[] = { "HOMEDESK_PASSWORD=" PASSWORD, NULL };
    int i = 0;

    snprintf(port, sizeof(port), "127.0.0.1:%u", (unsigned)h->port);
    snprintf(cfg, sizeof(cfg), "%s/v.cfg", tmp);
    snprintf(logp, sizeof(logp), "%s/bg.log", tmp);
    unlink(logp);
    argv[i++] = prog_viewer;
    argv[i++] = "--config-dir";
    argv[i++] = cfg;
    argv[i++] = "--direct";
    argv[i++] = port;
    for (int k = 0; args[k] != NULL && i < 15; k++)
        argv[i++] = args[k];
    argv[i] = NULL;
    return spawn_in(NULL, argv, env, logp);
}

/* Wait up to T for path to hold at least n bytes. */
static int grows_to(const char *path, long long n)
{
    for (int ms = 0; ms < T; ms += 2) {
        if (size_of(path) >= n)
            return 1;
        usleep(2000);
    }
    return 0;
}

/* The bytes= of the summary line in out, or -1. */
static long long summary_bytes(const char *out)
{
    const char *p = strstr(out, " bytes=");

    return p ? atoll(p + 7) : -1;
}

/*
 * A large file: a progress line on a terminal (script(1) gives the viewer
 * one), none in a log; a download stopped with Ctrl-C (SIGINT) keeps its
 * part, marked with the file's time, and the same command continues it
 * after its last whole block; a part of another version of the file is
 * not continued; an upload whose viewer dies (SIGKILL) leaves the host's
 * part, and the next upload continues it.  Every copy ends equal.
 */
static void progress_and_resume(void)
{
    const long long total = 40ll << 20;
    const time_t when = 1500000000;
    char out[8192], args[1600], src[400], part[500], dst[400], cmd[2400];
    char logp[400];
    long long kept, got;
    pid_t v;

    HT_CHECK(host_ok);
    write_file("../big/big.bin", (size_t)total, 1, when);
    snprintf(src, sizeof(src), "%s/big/big.bin", tmp);
    snprintf(dst, sizeof(dst), "%s/down/big.bin", tmp);
    snprintf(part, sizeof(part), "%s" HD_FILES_PART, dst);
    snprintf(logp, sizeof(logp), "%s/bg.log", tmp);

    /* on a terminal: the line, rewritten in place, ending at 100% */
    snprintf(cmd, sizeof(cmd),
             "HOMEDESK_PASSWORD='%s' script -qec \"timeout 60 '%s' "
             "--config-dir '%s/v.cfg' --direct 127.0.0.1:%u --get '%s' "
             "--to '%s/tty'\" /dev/null > '%s/tty.out' 2>&1",
             PASSWORD, prog_viewer, tmp, (unsigned)host.port, src, tmp, tmp);
    HT_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/tty.out", tmp);
    HT_CHECK(file_has(cmd, "\rxfer: 100% 40.0 MiB of 40.0 MiB, ", 0));
    HT_CHECK(file_has(cmd, "MiB/s", 0));
    HT_CHECK(file_has(cmd, "xfer: files=1 skipped=0 bytes=41943040 ", 0));

    /* stopped half way: the host frozen once a few MiB arrived, so the
     * stop falls inside the transfer however fast the machine is */
    snprintf(args, sizeof(args), "%s/down", tmp);
    v = viewer_bg(&host,
                  (const char *const[]){ "--get", src, "--to", args, NULL });
    HT_CHECK(v > 0 && grows_to(part, 4 << 20));
    kill(host.pid, SIGSTOP);
    kill(v, SIGINT);
    HT_EQ_INT(wait_exit(v, T), 130);
    kill(host.pid, SIGCONT);
    kept = size_of(part);
    HT_CHECK(kept >= 4 << 20 && kept < total);
    HT_EQ_INT((int)mtime_of(part), (int)when);
    HT_CHECK(file_has(logp, "the same command resumes it", 0));
    HT_CHECK(!file_has(logp, "\rxfer:", 0)); /* no progress line in a log */
    snprintf(args, sizeof(args), "--get '%s' --to '%s/down'", src, tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    got = summary_bytes(out);
    printf("# kept %lld, then fetched %lld of %lld\n", kept, got, total);
    HT_EQ_INT((int)got, (int)(total - kept / HD_FILE_BLOCK * HD_FILE_BLOCK));
    snprintf(cmd, sizeof(cmd), "%s/viewer.err", tmp);
    HT_CHECK(file_has(cmd, "resuming after", 0));
    HT_CHECK(trees_equal(src, dst));

    /* a part of another version (another time): fetched from the start */
    snprintf(cmd, sizeof(cmd),
             "rm -f '%s' && head -c 4194304 '%s' > '%s' && "
             "touch -d @%lld '%s'",
             dst, src, part, (long long)when + 1, part);
    HT_EQ_INT(system(cmd), 0);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    HT_EQ_INT((int)summary_bytes(out), (int)total);
    HT_CHECK(trees_equal(src, dst));

    /* an upload whose viewer is killed: the host keeps its part */
    snprintf(dst, sizeof(dst), "%s/up/big.bin", tmp);
    snprintf(part, sizeof(part), "%s" HD_FILES_PART, dst);
    snprintf(args, sizeof(args), "%s/up", tmp);
    v = viewer_bg(&host,
                  (const char *const[]){ "--put", src, "--to", args, NULL });
    HT_CHECK(v > 0 && grows_to(part, 4 << 20));
    kill(v, SIGKILL);
    wait_exit(v, T);
    HT_CHECK(file_has(host.log, "bytes kept to resume", T));
    kept = size_of(part);
    HT_CHECK(kept >= 4 << 20 && kept < total);
    snprintf(args, sizeof(args), "--put '%s' --to '%s/up'", src, tmp);
    HT_EQ_INT(viewer(&host, args, out, sizeof(out)), 0);
    got = summary_bytes(out);
    printf("# host kept %lld, then sent %lld of %lld\n", kept, got, total);
    HT_EQ_INT((int)got, (int)(total - kept / HD_FILE_BLOCK * HD_FILE_BLOCK));
    HT_CHECK(file_has(host.log, "resuming after", 0));
    HT_CHECK(trees_equal(src, dst));
}

int main(void)
{
    char cmd[600];

    ht_init("xfer");
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp, sizeof(tmp), "/tmp/hd-xfer-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    prog_path("homedesk-host", prog_host, sizeof(prog_host));
    prog_path("homedesk-viewer", prog_viewer, sizeof(prog_viewer));
    host_ok = host_start(&host, "host", NULL) == 0;
    HT_RUN(round_trip);
    HT_RUN(failures);
    HT_RUN(progress_and_resume);
    if (ht_case_failures() > 0) {
        snprintf(cmd, sizeof(cmd), "sed 's/^/# host: /' '%s'", host.log);
        if (system(cmd) != 0)
            printf("# no host log\n");
    }
    host_stop(&host);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (getenv("HD_KEEP_TMP") == NULL && system(cmd) != 0)
        printf("# cannot remove %s\n", tmp);
    return ht_finish();
}
