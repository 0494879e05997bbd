/*
 * The host's monitors on Windows (host/monitors.h): EnumDisplayMonitors,
 * in pixels of the virtual desktop that the gdi capture's frame starts at
 * (its top-left corner is 0,0 here), the primary monitor first.
 */
#include <stdio.h>
#include <string.h>

#include "host/monitors.h"
#include "os.h"

struct walk {
    struct monitor *out;
    int n, vx, vy;
};

static BOOL CALLBACK one(HMONITOR hm, HDC dc, LPRECT r, LPARAM lp)
{
    struct walk *w = (struct walk *)lp;
    MONITORINFOEXA mi;
    struct monitor m;

    (void)dc;
    (void)r;
    memset(&mi, 0, sizeof(mi));
    mi.cbSize = sizeof(mi);
    if (w->n >= MONITORS_MAX || !GetMonitorInfoA(hm, (MONITORINFO *)&mi))
        return TRUE;
    m.x = mi.rcMonitor.left - w->vx;
    m.y = mi.rcMonitor.top - w->vy;
    m.width = mi.rcMonitor.right - mi.rcMonitor.left;
    m.height = mi.rcMonitor.bottom - mi.rcMonitor.top;
    snprintf(m.name, sizeof(m.name), "%s", mi.szDevice);
    if (mi.dwFlags & MONITORINFOF_PRIMARY) {
        memmove(w->out + 1, w->out, (size_t)w->n * sizeof(*w->out));
        w->out[0] = m;
    } else {
        w->out[w->n] = m;
    }
    w->n++;
    return TRUE;
}

int monitors_list(const char *display, int screen_w, int screen_h,
                  struct monitor *out)
{
    struct walk w = { out, 0, GetSystemMetrics(SM_XVIRTUALSCREEN),
                      GetSystemMetrics(SM_YVIRTUALSCREEN) };

    (void)display;
    EnumDisplayMonitors(NULL, NULL, one, (LPARAM)&w);
    if (w.n == 0) {
        memset(&out[0], 0, sizeof(out[0]));
        out[0].width = screen_w;
        out[0].height = screen_h;
        snprintf(out[0].name, sizeof(out[0].name), "screen");
        w.n = 1;
    }
    return w.n;
}
