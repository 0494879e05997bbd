#!/bin/sh
# The Windows host (make host-win: build-win/homedesk-host.exe) under Wine
# on Xvfb against the native server and viewers: picture, input into a
# Win32 window, clipboard both ways, relay, idle CPU.  The cases are in
# tests/e2e/e2e_winhost.c; skipped only when Wine cannot run here.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_winhost"
