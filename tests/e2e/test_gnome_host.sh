#!/bin/sh
# The host on GNOME: homedesk-host inside a private headless mutter (with
# its own session bus, PipeWire and wireplumber) picks the pipewire capture
# and the remotedesktop input; the viewer's picture matches the card drawn
# on mutter's output, a click and typed text reach hd-wlcard, an idle host
# uses < 1 % CPU.  The cases are in tests/e2e/e2e_gnome.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_gnome"
