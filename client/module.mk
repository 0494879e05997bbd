# client/: homedesk-viewer, the SDL2 viewer.
VIEWER_SRCS := $(wildcard client/*.c client/*/*.c)
VIEWER_OBJS := $(VIEWER_SRCS:%.c=$(O)/%.o)
VIEWER_BIN := $(O)/homedesk-viewer

ifneq ($(VIEWER_SRCS),)
$(VIEWER_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_VIEWER)
endif

# The program is linked only once main.c exists (as server/ and host/).
ifneq ($(wildcard client/main.c),)
PROGRAMS += $(VIEWER_BIN)

$(VIEWER_BIN): $(VIEWER_OBJS) $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_VIEWER) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm
endif

# test_viewer's fake host encodes VP9 test frames (libvpx) and reads the
# viewer's PNG back (libpng): it links the viewer's libraries too, and runs
# the viewer program, so it depends on it.
$(O)/tests/integration/test_viewer: PKG_LIBS_SERVER += $(PKG_LIBS_VIEWER) -lpthread
$(O)/tests/integration/test_viewer: | $(VIEWER_BIN)
