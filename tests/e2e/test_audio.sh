#!/bin/sh
# End-to-end desktop sound: a tone played on the host's desktop (a private
# PulseAudio) is heard by the viewer, silence costs nothing, --no-audio
# gets nothing.  The cases are in tests/e2e/e2e_audio.c.
exec "${HD_BUILD_DIR:-${O:-build}}/tests/e2e/e2e_audio"
