# proto/: our .proto schemas (package hbb), compiled with protoc-c into the
# build tree.  Generated code is never committed.
PROTO_SRCS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(O)/proto/%.pb-c.c,$(PROTO_SRCS))
PROTO_HDRS := $(PROTO_C:.c=.h)
PROTO_OBJS := $(PROTO_C:.c=.o)

$(O)/proto/%.pb-c.c $(O)/proto/%.pb-c.h: proto/%.proto | $(O)/config.mk
	@mkdir -p $(@D)
	$(call msg,PROTOC,$<)
	$(Q)$(PROTOC_C) --c_out=$(O)/proto -Iproto $<

$(O)/proto/%.o: $(O)/proto/%.c | $(PROTO_HDRS)
	$(call msg,CC,$<)
	$(Q)$(CC) $(filter-out -Wmissing-prototypes,$(HD_CFLAGS)) $(CFLAGS) \
		$(PKG_CFLAGS_COMMON) -c $< -o $@

# Wayland protocols (the host's wlr backends, the Wayland test programs):
# wayland-scanner turns the XML Debian ships into $(O)/proto/wl/NAME.h (client
# header) and NAME.c (interfaces).  The wlroots protocols come from the XML
# inside librust-wayland-protocols-dev (Debian 12 has no wlr-protocols
# package; see tools/deps.sh).  zwp_virtual_keyboard_v1 is in neither: its
# interface is written out in host/input/vkbd-protocol.h.
WAYLAND_SCANNER ?= wayland-scanner
WL_XML_DIRS := /usr/share/wayland-protocols/stable/xdg-shell \
	/usr/share/wayland-protocols/unstable/xdg-output \
	$(lastword $(sort $(wildcard \
	/usr/share/cargo/registry/wayland-protocols-*/wlr-protocols/unstable)))
WL_PROTOS := xdg-shell xdg-output-unstable-v1 wlr-screencopy-unstable-v1 \
	wlr-virtual-pointer-unstable-v1 wlr-data-control-unstable-v1
WL_PROTO_HDRS := $(WL_PROTOS:%=$(O)/proto/wl/%.h)
WL_PROTO_OBJS := $(WL_PROTOS:%=$(O)/proto/wl/%.o)
vpath %.xml $(WL_XML_DIRS)

$(O)/proto/wl/%.h: %.xml | $(O)/config.mk
	@mkdir -p $(@D)
	$(call msg,WLSCAN,$@)
	$(Q)$(WAYLAND_SCANNER) client-header $< $@

$(O)/proto/wl/%.c: %.xml | $(O)/config.mk
	@mkdir -p $(@D)
	$(call msg,WLSCAN,$@)
	$(Q)$(WAYLAND_SCANNER) private-code $< $@

$(O)/proto/wl/%.o: $(O)/proto/wl/%.c
	$(call msg,CC,$<)
	$(Q)$(CC) $(filter-out -Wmissing-prototypes,$(HD_CFLAGS)) $(CFLAGS) \
		$(PKG_CFLAGS_WL) -c $< -o $@
