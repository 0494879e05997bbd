#!/bin/sh
# End-to-end session on two Xvfb displays: screens match (PSNR), typing on
# the host's desktop shows in the viewer, clicks and keys from the viewer
# window reach the host's desktop (1:1 and scaled), a wrong password is
# refused.  The cases are in tests/e2e/e2e_session.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_session"
