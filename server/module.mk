# server/: homedesk-server, rendezvous + relay (drop-in for hbbs/hbbr).
SERVER_SRCS := $(wildcard server/*.c)
# The admin page's files (server/admin/) built in as byte arrays.
ADMIN_PAGE_FILES := / server/admin/index.html "text/html; charset=utf-8" \
	/admin.js server/admin/admin.js "text/javascript; charset=utf-8" \
	/admin.css server/admin/admin.css "text/css; charset=utf-8"
ADMIN_PAGE_C := $(O)/server/admin_page.c
SERVER_OBJS := $(SERVER_SRCS:%.c=$(O)/%.o) $(O)/server/admin_page.o
SERVER_BIN := $(O)/homedesk-server

ifneq ($(SERVER_SRCS),)
$(SERVER_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_SERVER)
endif

$(ADMIN_PAGE_C): $(wildcard server/admin/*) tools/embed.sh
	@mkdir -p $(@D)
	$(call msg,EMBED,$@)
	$(Q)tools/embed.sh $@ $(ADMIN_PAGE_FILES)

$(O)/server/admin_page.o: $(ADMIN_PAGE_C) | $(O)/config.mk
	$(call msg,CC,$<)
	$(Q)$(CC) $(HD_CFLAGS) $(CFLAGS) $(CPPFLAGS) $(OBJ_CFLAGS) -c $< -o $@

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
