#!/bin/sh
# The host on Wayland: homedesk-host inside a private headless sway picks
# the wlr backends (wlr-screencopy, virtual keyboard and pointer); the
# viewer's picture matches the output (grim), a click and typed text
# reach hd-wlcard (our Wayland test client), an idle host uses < 1 % CPU.
# The cases are in tests/e2e/e2e_wlhost.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_wlhost"
