# host/: homedesk-host, the agent on the machine being reached.  Backends
# live in a folder per interface (capture/, input/, clipboard/, audio/).
HOST_SRCS := $(wildcard host/*.c host/*/*.c)
HOST_OBJS := $(HOST_SRCS:%.c=$(O)/%.o)
HOST_BIN := $(O)/homedesk-host

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

$(HOST_BIN): $(HOST_OBJS) $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_HOST) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm
endif
