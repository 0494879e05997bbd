#!/bin/sh
# Picture quality after stillness on two Xvfb displays: typed xterm text
# ends pixel-exact in the viewer, coloured text on a coloured background
# sharp, and a second viewer joining a still desktop gets it as sharp as
# the first.  The cases are in tests/e2e/e2e_quality.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_quality"
