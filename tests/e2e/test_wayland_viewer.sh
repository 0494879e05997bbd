#!/bin/sh
# The viewer on Wayland: a native window on a private headless sway showing
# an X11 host's screen (PSNR against grim), keys (upper case from a
# wtype-like keymap) and a click reaching the host, the grab hotkey kept to
# the viewer, a scale change to 2 followed sharp.  The cases are in
# tests/e2e/e2e_wlviewer.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_wlviewer"
