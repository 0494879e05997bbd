#!/bin/sh
# End-to-end through the server: a session forced through the relay (a
# recording proxy checks the relay never sees typed text or the password)
# and a server restart under a running session.  The cases are in
# tests/e2e/e2e_net.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_net"
