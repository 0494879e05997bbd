# server/: homedesk-server, rendezvous + relay (drop-in for hbbs/hbbr).
SERVER_SRCS := $(wildcard server/*.c)
SERVER_OBJS := $(SERVER_SRCS:%.c=$(O)/%.o)
SERVER_BIN := $(O)/homedesk-server

ifneq ($(SERVER_SRCS),)
$(SERVER_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_SERVER)
endif

# The program is linked only once main.c exists; until then the modules are
# built and exercised by the test_srv_* unit tests (tests/module.mk).
ifneq ($(wildcard server/main.c),)
PROGRAMS += $(SERVER_BIN) $(O)/hbbs $(O)/hbbr

$(SERVER_BIN): $(SERVER_OBJS) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_SERVER) \
		$(PKG_LIBS_COMMON) -lm

$(O)/hbbs $(O)/hbbr: | $(SERVER_BIN)
	$(Q)ln -sf homedesk-server $@
endif
