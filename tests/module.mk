# tests/: the in-tree harness, unit tests (one per common/ module),
# integration tests (real programs on loopback), e2e (Xvfb), nat (network
# namespaces), fuzz targets (libFuzzer) and benchmarks.
HARNESS_OBJ := $(O)/tests/harness.o
$(HARNESS_OBJ): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON)

# Unit tests: tests/unit/test_X.c -> one binary each.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(UNIT_SRCS))
$(UNIT_SRCS:%.c=$(O)/%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_MEDIA)

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(HARNESS_OBJ) $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_MEDIA) \
		$(PKG_LIBS_COMMON) -lm

# Unit tests of server/ modules (test_srv_X.c) also link every server object
# but main.o, and the server's libraries.
SERVER_LIB_OBJS := $(filter-out $(O)/server/main.o,$(SERVER_OBJS))
SRV_UNIT_SRCS := $(wildcard tests/unit/test_srv_*.c)
SRV_UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(SRV_UNIT_SRCS))
$(SRV_UNIT_SRCS:%.c=$(O)/%.o): \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_SERVER)

$(SRV_UNIT_BINS): $(O)/tests/unit/%: $(O)/tests/unit/%.o $(SERVER_LIB_OBJS) \
		$(HARNESS_OBJ) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_SERVER) \
		$(PKG_LIBS_COMMON) -lm

# Unit tests of host/ modules (test_host_X.c) likewise link every host
# object but main.o, and the host's libraries.
HOST_LIB_OBJS := $(filter-out $(O)/host/main.o,$(HOST_OBJS))
HOST_UNIT_SRCS := $(wildcard tests/unit/test_host_*.c)
HOST_UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(HOST_UNIT_SRCS))
$(HOST_UNIT_SRCS:%.c=$(O)/%.o): \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_HOST)

$(HOST_UNIT_BINS): $(O)/tests/unit/%: $(O)/tests/unit/%.o $(HOST_LIB_OBJS) \
		$(HARNESS_OBJ) $(LIBMEDIA) $(LIBNATMAP) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_HOST) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm

# The unit test of port mapping (common/nat/map.h) links its library and
# libminiupnpc (with the host's libraries).
$(O)/tests/unit/test_nat_map: $(O)/tests/unit/test_nat_map.o $(HARNESS_OBJ) \
		$(LIBNATMAP) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_HOST) \
		$(PKG_LIBS_COMMON) $(PKG_LIBS_OS) -lpthread -lm

# Unit tests of the viewer's picture helpers (test_view_picture.c) link
# client/picture.o and libpng.
$(O)/tests/unit/test_view_picture.o: \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_VIEWER)
$(O)/tests/unit/test_view_picture: $(O)/client/picture.o
$(O)/tests/unit/test_view_picture: PKG_LIBS_MEDIA += $(PKG_LIBS_VIEWER)

# Integration tests: tests/integration/test_X.c -> one binary each, linked
# with the support code beside them (every other .c in that folder).
ITEST_SRCS := $(wildcard tests/integration/test_*.c)
ITEST_SUPPORT := $(filter-out $(ITEST_SRCS),$(wildcard tests/integration/*.c))
ITEST_SUPPORT_OBJS := $(ITEST_SUPPORT:%.c=$(O)/%.o)
ITEST_BINS := $(patsubst tests/integration/%.c,$(O)/tests/integration/%,\
	$(ITEST_SRCS))
$(ITEST_SRCS:%.c=$(O)/%.o) $(ITEST_SUPPORT_OBJS): \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_MEDIA) $(PKG_CFLAGS_SERVER)

# (media: test_host decodes the host's VP9 frames with vdec)
$(O)/tests/integration/%: $(O)/tests/integration/%.o $(ITEST_SUPPORT_OBJS) \
		$(HARNESS_OBJ) $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_SERVER) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm

# Shared image helpers (PNG, xwd, PSNR): libpng, from the viewer's flags.
IMAGE_OBJ := $(O)/tests/image.o
$(IMAGE_OBJ): OBJ_CFLAGS = $(PKG_CFLAGS_VIEWER)
$(O)/tests/integration/test_viewer: $(IMAGE_OBJ)
# test_admin reads Chromium's screenshot of the admin page
$(O)/tests/integration/test_admin: $(IMAGE_OBJ)
$(O)/tests/integration/test_admin: PKG_LIBS_MEDIA += \
	$(filter -L% -lpng%,$(PKG_LIBS_VIEWER))

# End-to-end tests (tests/e2e/test_*.sh run the programs built here):
# tests/e2e/NAME.c -> $(O)/tests/e2e/NAME, each linked with desk.c (two
# Xvfb displays, the real programs, a recording proxy), the image helpers
# and the integration support code; XCB and libpng.
E2E_LIB_SRCS := tests/e2e/desk.c tests/e2e/sway.c tests/e2e/tone.c
E2E_SRCS := $(filter-out $(E2E_LIB_SRCS),$(wildcard tests/e2e/*.c))
E2E_LIB_OBJS := $(E2E_LIB_SRCS:%.c=$(O)/%.o) $(IMAGE_OBJ)
E2E_BINS := $(patsubst tests/e2e/%.c,$(O)/tests/e2e/%,$(E2E_SRCS))
E2E_LIBS = $(filter -L% -lxcb -lxcb-xfixes -lpng%,$(PKG_LIBS_HOST) \
	$(PKG_LIBS_VIEWER))
$(E2E_SRCS:%.c=$(O)/%.o) $(E2E_LIB_SRCS:%.c=$(O)/%.o): \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_HOST)

$(O)/tests/e2e/%: $(O)/tests/e2e/%.o $(E2E_LIB_OBJS) $(ITEST_SUPPORT_OBJS) \
		$(HARNESS_OBJ) $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(E2E_LIBS) \
		$(PKG_LIBS_SERVER) $(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm

# The Wayland test programs (tests/e2e/hd-wl*.c) also use wayland-client,
# xkbcommon and the protocol code wayland-scanner made (proto/module.mk).
WL_TEST_BINS := $(patsubst tests/e2e/%.c,$(O)/tests/e2e/%,\
	$(wildcard tests/e2e/hd-wl*.c))
$(WL_TEST_BINS:%=%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_HOST) \
	$(PKG_CFLAGS_WL) -I$(O)/proto/wl
$(WL_TEST_BINS:%=%.o): | $(WL_PROTO_HDRS)
$(WL_TEST_BINS): $(WL_PROTO_OBJS)
$(WL_TEST_BINS): E2E_LIBS += $(PKG_LIBS_WL)

TEST_BINS += $(UNIT_BINS) $(ITEST_BINS) $(E2E_BINS)

# Windows test programs (tests/win/*.c -> $(O)/tests/win/NAME.exe), built
# by make host-win (tools/cross-win.sh) and run under Wine by the e2e, and
# the unit tests of common/ that are portable, as Windows programs
# ($(O)/tests/unit/test_NAME.exe; tests/win/test_units.sh runs them).
ifeq ($(HD_WIN),1)
WIN_UNIT_TESTS := addr clip frame net uprobe venc
WIN_UNIT_BINS := $(WIN_UNIT_TESTS:%=$(O)/tests/unit/test_%.exe)
$(O)/tests/unit/%.exe: $(O)/tests/unit/%.o $(HARNESS_OBJ) $(LIBMEDIA) \
		$(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_MEDIA) \
		$(PKG_LIBS_COMMON) $(PKG_LIBS_OS) -lm
.PHONY: win-test-bins
win-test-bins: $(WIN_UNIT_BINS)
WIN_TEST_BINS := $(patsubst tests/win/%.c,$(O)/tests/win/%.exe,\
	$(wildcard tests/win/*.c))
$(O)/tests/win/%.exe: tests/win/%.c
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(HD_CFLAGS) $(CFLAGS) -o $@ $< -lgdi32
endif

# Fuzz targets: built by clang with libFuzzer in their own tree.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(O)/tests/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60
ifeq ($(FUZZ),1)
HD_CFLAGS += -fsanitize=fuzzer-no-link
$(FUZZ_SRCS:%.c=$(O)/%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON)
$(O)/tests/fuzz/%: $(O)/tests/fuzz/%.o $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ \
		$(PKG_LIBS_COMMON) -lm
# The clipboard and still tiles targets need the media library (zstd).
FUZZ_MEDIA := $(O)/tests/fuzz/fuzz_clip $(O)/tests/fuzz/fuzz_tiles
$(FUZZ_MEDIA:%=%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_MEDIA)
$(FUZZ_MEDIA): %: %.o $(LIBMEDIA) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lm
# Targets for server/ parsers (fuzz_srv_X.c) also link every server object
# but main.o, and the server's libraries.
FUZZ_SRV_SRCS := $(wildcard tests/fuzz/fuzz_srv_*.c)
$(FUZZ_SRV_SRCS:%.c=$(O)/%.o): \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_SERVER)
$(patsubst tests/fuzz/%.c,$(O)/tests/fuzz/%,$(FUZZ_SRV_SRCS)): \
		$(O)/tests/fuzz/%: $(O)/tests/fuzz/%.o $(SERVER_LIB_OBJS) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ \
		$(PKG_LIBS_SERVER) $(PKG_LIBS_COMMON) -lm
endif
.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BINS)

fuzz:
	$(Q)$(MAKE) --no-print-directory O=build-fuzz CC=$(CLANG) \
		SANITIZE=address,undefined FUZZ=1 fuzz-bins
	$(Q)tools/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

# Benchmarks: tests/bench/bench_X.c -> one binary each, built only for
# `make bench` (never part of all or test), linked with the integration
# support code (they start the real programs).
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(O)/tests/bench/%,$(BENCH_SRCS))
$(BENCH_SRCS:%.c=$(O)/%.o): \
	OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_MEDIA) $(PKG_CFLAGS_SERVER)

$(O)/tests/bench/%: $(O)/tests/bench/%.o $(ITEST_SUPPORT_OBJS) $(LIBMEDIA) \
		$(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_SERVER) \
		$(PKG_LIBS_MEDIA) $(PKG_LIBS_COMMON) -lpthread -lm

# bench_session drives two Xvfb displays with the e2e support code (and
# the harness, which desk.c's case helpers report through).
$(O)/tests/bench/bench_session: $(E2E_LIB_OBJS) $(HARNESS_OBJ)
$(O)/tests/bench/bench_session: PKG_LIBS_SERVER += $(E2E_LIBS)
# bench_peers too, and polls the viewer's display through MIT-SHM.
$(O)/tests/bench/bench_peers: $(E2E_LIB_OBJS) $(HARNESS_OBJ)
$(O)/tests/bench/bench_peers: PKG_LIBS_SERVER += $(E2E_LIBS) \
	$(filter -lxcb-shm,$(PKG_LIBS_HOST))

bench: all $(BENCH_BINS)
	$(Q)tools/deps.sh bench
	$(Q)O=$(O) tools/run-bench.sh

# NAT lab helpers: tests/nat/NAME.c -> one program each (the peer side of
# the namespace tests in tests/nat/test_*.sh), linked with the integration
# support code for its framed/UDP message helpers.
NAT_SRCS := $(wildcard tests/nat/*.c)
NAT_BINS := $(patsubst tests/nat/%.c,$(O)/tests/nat/%,$(NAT_SRCS))
$(NAT_SRCS:%.c=$(O)/%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON)

$(O)/tests/nat/%: $(O)/tests/nat/%.o $(ITEST_SUPPORT_OBJS) $(LIBCOMMON)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(HD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS_COMMON) -lm

TEST_BINS += $(NAT_BINS)
