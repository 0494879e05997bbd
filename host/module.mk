# host/: homedesk-host, the agent on the machine being reached.  Backends
# live in a folder per interface (capture/, input/, clipboard/, audio/).
# Backends for one system only are listed here; Windows (HD_WIN, make
# host-win) builds no X11, Wayland or PulseAudio code.
HOST_POSIX_ONLY := host/capture/x11.c host/capture/wlr.c host/input/xtest.c \
	host/input/wlr.c host/clipboard/x11.c host/clipboard/wlr.c \
	host/clipboard/mailbox.c host/audio/pulse.c host/monitors.c \
	host/wayland/outputs.c host/capture/pipewire.c \
	host/input/remotedesktop.c host/gnome/mutter.c
HOST_WIN_ONLY := host/capture/dxgi.c host/capture/gdi.c host/input/sendinput.c \
	host/clipboard/win32.c host/audio/wasapi.c host/monitors_win.c
HOST_SRCS := $(filter-out $(if $(HD_WIN),$(HOST_POSIX_ONLY),$(HOST_WIN_ONLY)),\
	$(wildcard host/*.c host/*/*.c))
HOST_OBJS := $(HOST_SRCS:%.c=$(O)/%.o)
HOST_BIN := $(O)/homedesk-host$(EXE)
ifeq ($(HD_WIN),1)
WL_PROTO_HDRS :=
WL_PROTO_OBJS :=
# the manifest: UTF-8 code page, DPI awareness (host/win/homedesk-host.rc)
HOST_OBJS += $(O)/host/win/resource.o
$(O)/host/win/resource.o: host/win/homedesk-host.rc \
		host/win/homedesk-host.manifest
	@mkdir -p $(@D)
	$(call msg,RC,$<)
	$(Q)$(WINDRES) -I host/win $< -o $@
endif

ifneq ($(HOST_SRCS),)
$(HOST_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_HOST) \
	-I$(O)/proto/wl
# the wlr backends include the protocol headers wayland-scanner makes
$(HOST_OBJS): | $(WL_PROTO_HDRS)
endif
# ... and link their interfaces
HOST_OBJS += $(WL_PROTO_OBJS)

# The program is linked only once main.c exists; until then the backends
# are built and exercised by the test_host_* unit tests (tests/module.mk).
ifneq ($(wildcard host/main.c),)
PROGRAMS += $(HOST_BIN)

$(HOST_BIN): $(HOST_OBJS) $(LIBMEDIA) $(LIBNATMAP) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_HOST) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) $(PKG_LIBS_OS) -lpthread -lm
endif
