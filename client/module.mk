# client/: homedesk-viewer, the SDL2 viewer.
VIEWER_SRCS := $(wildcard client/*.c client/*/*.c)
VIEWER_OBJS := $(VIEWER_SRCS:%.c=$(O)/%.o)
VIEWER_BIN := $(O)/homedesk-viewer

ifneq ($(VIEWER_SRCS),)
PROGRAMS += $(VIEWER_BIN)
$(VIEWER_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_VIEWER)

$(VIEWER_BIN): $(VIEWER_OBJS) $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_VIEWER) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm
endif
