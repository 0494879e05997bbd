/*
 * hd-wintest.exe: a Win32 test window for the Windows host's end-to-end
 * test under Wine (tests/e2e/e2e_winhost.c).  SendInput reaches Windows
 * windows only (not the native X clients Wine shares the screen with), so
 * this window is where the viewer's clicks and keys are checked.
 *
 * Usage: hd-wintest.exe RECORD X Y W H
 *        hd-wintest.exe --clipboard   print the Win32 clipboard's text
 *                                     (CF_UNICODETEXT, as UTF-8) and exit
 * A borderless window at X,Y (screen pixels) of W x H, painted a flat
 * colour with a white strip at the bottom that echoes the text typed so
 * far.  Every event is appended to RECORD (flushed at once), one a line:
 *   ready
 *   char U+XXXX          (WM_CHAR; surrogate pairs joined)
 *   key VK down|up       (WM_KEYDOWN/UP, WM_SYSKEYDOWN/UP)
 *   click BUTTON X Y     (button down; X Y in screen pixels)
 *   wheel DY DX          (WM_MOUSEWHEEL / WM_MOUSEHWHEEL, in notches)
 * The window takes the focus when shown and when clicked.
 */
#ifndef UNICODE
#define UNICODE
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#define BG RGB(0x20, 0x80, 0x40)

static FILE *rec;
static wchar_t typed[256];
static size_t n_typed;
static WCHAR high;

static void note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(rec, fmt, ap);
    va_end(ap);
    fputc('\n', rec);
    fflush(rec);
}

static void on_click(HWND w, const char *button, LPARAM lp)
{
    POINT p = { (short)LOWORD(lp), (short)HIWORD(lp) };

    ClientToScreen(w, &p);
    note("click %s %ld %ld", button, (long)p.x, (long)p.y);
    SetForegroundWindow(w);
    SetFocus(w);
}

static LRESULT CALLBACK proc(HWND w, UINT m, WPARAM wp, LPARAM lp)
{
    PAINTSTRUCT ps;
    RECT r, strip;
    HDC dc;
    unsigned cp;

    switch (m) {
    case WM_PAINT:
        dc = BeginPaint(w, &ps);
        GetClientRect(w, &r);
        strip = r;
        strip.top = r.bottom - 24;
        r.bottom = strip.top;
        SetBkColor(dc, BG);
        ExtTextOutW(dc, 0, 0, ETO_OPAQUE, &r, NULL, 0, NULL);
        SetBkColor(dc, RGB(255, 255, 255));
        SetTextColor(dc, RGB(0, 0, 0));
        ExtTextOutW(dc, 4, strip.top + 4, ETO_OPAQUE, &strip, typed,
                    (UINT)n_typed, NULL);
        EndPaint(w, &ps);
        return 0;
    case WM_CHAR:
        if (wp >= 0xd800 && wp < 0xdc00) {
            high = (WCHAR)wp;
            return 0;
        }
        cp = (unsigned)wp;
        if (wp >= 0xdc00 && wp < 0xe000 && high)
            cp = 0x10000 + ((unsigned)(high - 0xd800) << 10) +
                 (unsigned)(wp - 0xdc00);
        high = 0;
        note("char U+%04X", cp);
        if (cp >= 0x20 && cp < 0x10000 && n_typed < 255) {
            typed[n_typed++] = (wchar_t)cp;
            InvalidateRect(w, NULL, FALSE);
        }
        return 0;
    case WM_KEYDOWN:
    case WM_SYSKEYDOWN:
        note("key %u down", (unsigned)wp);
        break;
    case WM_KEYUP:
    case WM_SYSKEYUP:
        note("key %u up", (unsigned)wp);
        break;
    case WM_LBUTTONDOWN:
        on_click(w, "left", lp);
        return 0;
    case WM_RBUTTONDOWN:
        on_click(w, "right", lp);
        return 0;
    case WM_MBUTTONDOWN:
        on_click(w, "middle", lp);
        return 0;
    case WM_MOUSEWHEEL:
        note("wheel %d 0", GET_WHEEL_DELTA_WPARAM(wp) / WHEEL_DELTA);
        return 0;
    case WM_MOUSEHWHEEL:
        note("wheel 0 %d", GET_WHEEL_DELTA_WPARAM(wp) / WHEEL_DELTA);
        return 0;
    case WM_DESTROY:
        PostQuitMessage(0);
        return 0;
    }
    return DefWindowProcW(w, m, wp, lp);
}

/* The clipboard's text on stdout: 0, or 1 when there is none. */
static int print_clipboard(void)
{
    HANDLE h;
    wchar_t *t;
    char *s;
    int n, r = 1;

    if (!OpenClipboard(NULL))
        return 1;
    if ((h = GetClipboardData(CF_UNICODETEXT)) != NULL &&
        (t = GlobalLock(h)) != NULL) {
        n = WideCharToMultiByte(CP_UTF8, 0, t, -1, NULL, 0, NULL, NULL);
        if (n > 0 && (s = malloc((size_t)n)) != NULL) {
            WideCharToMultiByte(CP_UTF8, 0, t, -1, s, n, NULL, NULL);
            fputs(s, stdout);
            free(s);
            r = 0;
        }
        GlobalUnlock(h);
    }
    CloseClipboard();
    return r;
}

int main(int argc, char **argv)
{
    WNDCLASSW wc = { 0 };
    HWND w;
    MSG m;

    if (argc == 2 && strcmp(argv[1], "--clipboard") == 0)
        return print_clipboard();
    if (argc != 6 || (rec = fopen(argv[1], "a")) == NULL) {
        fprintf(stderr, "usage: hd-wintest.exe RECORD X Y W H\n");
        return 2;
    }
    wc.lpfnWndProc = proc;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.hCursor = LoadCursorW(NULL, (LPCWSTR)IDC_ARROW);
    wc.lpszClassName = L"hd-wintest";
    RegisterClassW(&wc);
    w = CreateWindowExW(0, wc.lpszClassName, L"hd-wintest", WS_POPUP,
                        atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                        atoi(argv[5]), NULL, NULL, wc.hInstance, NULL);
    if (w == NULL) {
        fprintf(stderr, "hd-wintest: CreateWindow failed (%lu)\n",
                (unsigned long)GetLastError());
        return 1;
    }
    ShowWindow(w, SW_SHOW);
    UpdateWindow(w);
    SetForegroundWindow(w);
    SetFocus(w);
    note("ready");
    while (GetMessageW(&m, NULL, 0, 0) > 0) {
        TranslateMessage(&m);
        DispatchMessageW(&m);
    }
    return 0;
}
