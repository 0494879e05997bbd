/*
 * The Windows clipboard (host/clipboard/clipboard.h): a thread of its own
 * with a message-only window registered with AddClipboardFormatListener.
 * On WM_CLIPBOARDUPDATE it reads CF_UNICODETEXT and reports it as UTF-8
 * with "\n" line ends (clip_report: the framework drops echoes, including
 * the update our own write causes).  set() posts the text to the thread,
 * which takes the clipboard and puts it there with "\r\n" line ends.
 *
 * Threads: open, set and close on the loop thread; the window and every
 * clipboard call on the clipboard thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/clipboard/clipboard.h"
#include "log.h"
#include "os.h"

#define MOD    "clipboard-win32"
#define WM_SET (WM_APP + 1)

struct wclip {
    struct hclip *hc;
    pthread_t thread;
    HWND hwnd;
    HANDLE ready; /* set once hwnd exists (or failed) */
    pthread_mutex_t mu;
    char *out; /* from a viewer, for the clipboard thread */
    size_t out_n;
};

/* UTF-16 with "\r\n" -> UTF-8 with "\n"; malloc'd, *n its length. */
static char *to_utf8(const wchar_t *w, size_t *n)
{
    int len = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s;
    size_t i, j;

    if (len <= 0 || (s = malloc((size_t)len)) == NULL)
        return NULL;
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, len, NULL, NULL);
    for (i = j = 0; s[i]; i++)
        if (!(s[i] == '\r' && s[i + 1] == '\n'))
            s[j++] = s[i];
    s[j] = '\0';
    *n = j;
    return s;
}

/* UTF-8 (n bytes) with "\n" -> a movable global block of UTF-16 with
 * "\r\n", for SetClipboardData; NULL on failure. */
static HGLOBAL to_global(const char *s, size_t n)
{
    int len = MultiByteToWideChar(CP_UTF8, 0, s, (int)n, NULL, 0);
    wchar_t *w, *g;
    HGLOBAL h;
    int i, j;

    if (len < 0 || (w = malloc(((size_t)len + 1) * sizeof(*w))) == NULL)
        return NULL;
    MultiByteToWideChar(CP_UTF8, 0, s, (int)n, w, len);
    h = GlobalAlloc(GMEM_MOVEABLE, ((size_t)len * 2 + 1) * sizeof(*w));
    if (h != NULL && (g = GlobalLock(h)) != NULL) {
        for (i = j = 0; i < len; i++) {
            if (w[i] == L'\n' && (i == 0 || w[i - 1] != L'\r'))
                g[j++] = L'\r';
            g[j++] = w[i];
        }
        g[j] = 0;
        GlobalUnlock(h);
    }
    free(w);
    return h;
}

static void read_clipboard(struct wclip *c)
{
    HANDLE h;
    wchar_t *w;
    char *s = NULL;
    size_t n = 0;

    if (!IsClipboardFormatAvailable(CF_UNICODETEXT) || !OpenClipboard(c->hwnd))
        return;
    if ((h = GetClipboardData(CF_UNICODETEXT)) != NULL &&
        (w = GlobalLock(h)) != NULL) {
        s = to_utf8(w, &n);
        GlobalUnlock(h);
    }
    CloseClipboard();
    if (s == NULL)
        return;
    hd_debug(MOD, "clipboard update: %zu bytes of text", n);
    clip_report(c->hc, s, n);
    free(s);
}

static void write_clipboard(struct wclip *c)
{
    HGLOBAL g;
    char *s;
    size_t n;

    pthread_mutex_lock(&c->mu);
    s = c->out;
    n = c->out_n;
    c->out = NULL;
    pthread_mutex_unlock(&c->mu);
    if (s == NULL)
        return;
    g = to_global(s, n);
    free(s);
    if (g == NULL)
        return;
    if (!OpenClipboard(c->hwnd)) {
        hd_warn(MOD,
                "OpenClipboard: Windows error %lu (another program holds "
                "it); the viewer's text is not set",
                (unsigned long)GetLastError());
        GlobalFree(g);
        return;
    }
    EmptyClipboard();
    if (SetClipboardData(CF_UNICODETEXT, g) == NULL) {
        hd_warn(MOD,
                "SetClipboardData: Windows error %lu; the viewer's text "
                "is not set",
                (unsigned long)GetLastError());
        GlobalFree(g);
    } else {
        hd_debug(MOD, "the viewer's text (%zu bytes) is on the clipboard", n);
    }
    CloseClipboard();
}

static LRESULT CALLBACK wndproc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    struct wclip *c = (struct wclip *)GetWindowLongPtrW(hwnd, GWLP_USERDATA);

    if (c != NULL && msg == WM_CLIPBOARDUPDATE) {
        read_clipboard(c);
        return 0;
    }
    if (c != NULL && msg == WM_SET) {
        write_clipboard(c);
        return 0;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static void *clip_thread(void *arg)
{
    struct wclip *c = arg;
    WNDCLASSW wc = { 0 };
    MSG m;

    wc.lpfnWndProc = wndproc;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.lpszClassName = L"homedesk-clipboard";
    RegisterClassW(&wc);
    c->hwnd = CreateWindowExW(0, wc.lpszClassName, L"homedesk clipboard", 0, 0,
                              0, 0, 0, HWND_MESSAGE, NULL, wc.hInstance, NULL);
    if (c->hwnd != NULL) {
        SetWindowLongPtrW(c->hwnd, GWLP_USERDATA, (LONG_PTR)c);
        if (!AddClipboardFormatListener(c->hwnd)) {
            DestroyWindow(c->hwnd);
            c->hwnd = NULL;
        }
    }
    SetEvent(c->ready);
    if (c->hwnd == NULL)
        return NULL;
    while (GetMessageW(&m, NULL, 0, 0) > 0)
        DispatchMessageW(&m);
    RemoveClipboardFormatListener(c->hwnd);
    DestroyWindow(c->hwnd);
    return NULL;
}

static int win32_open(struct hclip *hc, const struct clip_opts *opts)
{
    struct wclip *c = hc->priv;
    DWORD err;

    (void)opts;
    c->hc = hc;
    pthread_mutex_init(&c->mu, NULL);
    c->ready = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (c->ready == NULL || pthread_create(&c->thread, NULL, clip_thread, c)) {
        hd_error(MOD, "cannot start the clipboard thread");
        if (c->ready != NULL)
            CloseHandle(c->ready);
        pthread_mutex_destroy(&c->mu);
        return -ENOMEM;
    }
    WaitForSingleObject(c->ready, INFINITE);
    if (c->hwnd == NULL) {
        err = GetLastError();
        pthread_join(c->thread, NULL);
        CloseHandle(c->ready);
        pthread_mutex_destroy(&c->mu);
        hd_error(MOD,
                 "no clipboard listener window (Windows error %lu): "
                 "clipboard off",
                 (unsigned long)err);
        return -ENODEV;
    }
    return 0;
}

static void win32_set(struct hclip *hc, char *text, size_t n)
{
    struct wclip *c = hc->priv;

    pthread_mutex_lock(&c->mu);
    free(c->out);
    c->out = text;
    c->out_n = n;
    pthread_mutex_unlock(&c->mu);
    PostMessageW(c->hwnd, WM_SET, 0, 0);
}

static void win32_close(struct hclip *hc)
{
    struct wclip *c = hc->priv;

    PostMessageW(c->hwnd, WM_QUIT, 0, 0);
    pthread_join(c->thread, NULL);
    CloseHandle(c->ready);
    free(c->out);
    c->out = NULL;
    pthread_mutex_destroy(&c->mu);
}

const struct clip_driver clip_driver_win32 = {
    .name = "win32",
    .description = "the Windows clipboard (a listener window)",
    .priv_size = sizeof(struct wclip),
    .open = win32_open,
    .set = win32_set,
    .close = win32_close,
};
