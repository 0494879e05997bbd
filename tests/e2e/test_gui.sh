#!/bin/sh
# The viewer's connect window driven with xdotool on Xvfb: connect by
# typing an ID and password (screenshot-checked), recent hosts kept with a
# remembered password, a wrong password and an unknown ID shown in the
# window.  The cases are in tests/e2e/e2e_gui.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_gui"
