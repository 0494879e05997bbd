# homedesk: one non-recursive GNU Makefile.  Each folder describes itself in
# its module.mk; this file holds the toolchain, the pattern rules and the
# top-level targets.  Objects go under $(O) (default build/, build-san/ when
# SANITIZE is set).  V=1 shows commands, DEVELOPER=1 adds -Werror.

ifeq ($(origin O),undefined)
O := $(if $(SANITIZE),build-san,build)
endif
ifeq ($(origin CC),default)
CC := cc
endif
PKG_CONFIG ?= pkg-config
CLANG ?= clang
CLANG_FORMAT ?= clang-format
PROTOC_C ?= protoc-c

VERSION := 0.1.0

ifeq ($(V),1)
Q :=
msg = @:
else
Q := @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)'
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wvla \
	-Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
HD_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -DHD_VERSION='"$(VERSION)"' \
	-I. -Icommon -I$(O)/proto -MMD -MP
HD_LDFLAGS :=
ifeq ($(DEVELOPER),1)
HD_CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
HD_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
HD_LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Goals that must not install packages or read pkg-config.
NOCONF_GOALS := clean distclean deps format format-check help server-arm64 \
	test-arm64 host-win
ifeq ($(filter-out $(NOCONF_GOALS),$(or $(MAKECMDGOALS),all)),)
SKIP_CONFIG := 1
endif

.DEFAULT_GOAL := all
.PHONY: all deps test unit bench fuzz format format-check clean help demo deb \
	server-arm64 test-arm64 test-docker test-systemd install host-win test-win
.SUFFIXES:
# Keep generated sources and objects that pattern chains would delete.
.SECONDARY:

# Windows (mingw-w64, tools/cross-win.sh): HD_WIN=1 and .exe programs.
ifneq ($(findstring mingw32,$(CC)),)
HD_WIN := 1
EXE := .exe
endif

ifneq ($(SKIP_CONFIG),1)
ifeq ($(HD_WIN),1)
# the static libraries of tools/win-deps.sh (tools/cross-win.sh writes it)
$(O)/config.mk: tools/cross-win.sh tools/win-deps.sh
	$(Q)tools/cross-win.sh config $@
else
# Generated once per build tree: installs missing packages, then records
# every library's flags.  Make re-reads it after building it.
$(O)/config.mk: tools/deps.sh tools/configure.sh
	$(Q)tools/deps.sh test
	$(call msg,CONFIG,$@)
	$(Q)tools/configure.sh $@
endif
-include $(O)/config.mk
endif

deps:
	$(Q)tools/deps.sh test

# Debian packages of the three programs from $(O) into $(O)/deb.
deb: all
	$(Q)tools/mkdeb.sh $(O) $(O)/deb

# homedesk-server for 64-bit ARM in build-arm64/ (tools/cross-arm64.sh):
# the cross toolchain and arm64 libraries come from tools/deps.sh arm64;
# test-arm64 runs the server's integration tests against it under qemu.
server-arm64:
	$(Q)tools/deps.sh arm64
	$(Q)tools/cross-arm64.sh build

test-arm64:
	$(Q)tools/deps.sh test
	$(Q)tools/deps.sh arm64
	$(Q)tools/cross-arm64.sh test

# homedesk-host for Windows in build-win/ (tools/cross-win.sh): mingw-w64
# and Wine from tools/deps.sh win64, the libraries built from Debian's
# source packages by tools/win-deps.sh (cached in build-win/deps);
# test-win runs the unit tests cross-built and the host's e2e under Wine.
host-win:
	$(Q)tools/deps.sh win64
	+$(Q)tools/cross-win.sh build

test-win: all
	$(Q)tools/deps.sh win64
	+$(Q)tools/cross-win.sh test

# Filled by the module.mk files.
PROGRAMS :=
TEST_BINS :=
FUZZ_BINS :=
BENCH_BINS :=
CLEAN_FILES :=

include proto/module.mk
include common/module.mk
include server/module.mk
include host/module.mk
include client/module.mk
include tests/module.mk

# The man pages: the hand-written man/PAGE.in with the OPTIONS section
# that the program itself prints from its option table (--help-man).
MAN_PAGES := $(O)/man/homedesk-server.8 $(O)/man/homedesk-host.1 \
	$(O)/man/homedesk-viewer.1
$(O)/man/homedesk-server.8: $(O)/homedesk-server
$(O)/man/homedesk-host.1: $(O)/homedesk-host
$(O)/man/homedesk-viewer.1: $(O)/homedesk-viewer
$(MAN_PAGES): $(O)/man/%: man/%.in tools/mkman.sh
	@mkdir -p $(@D)
	$(call msg,MAN,$@)
	$(Q)tools/mkman.sh $(filter-out $< tools/mkman.sh,$^) $< $@ $(VERSION)

all: $(PROGRAMS) $(TEST_BINS) $(MAN_PAGES)

# Programs, man pages, systemd units, the viewer's .desktop file and the
# docs under $(DESTDIR)$(PREFIX) (tools/install.sh lists where each goes;
# BINDIR, MANDIR, SYSTEMDDIR, ... override one place).
PREFIX ?= /usr/local
install: $(PROGRAMS) $(MAN_PAGES)
	$(Q)O=$(O) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) tools/install.sh

$(O)/%.o: %.c | $(O)/config.mk $(PROTO_HDRS)
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(HD_CFLAGS) $(CFLAGS) $(CPPFLAGS) $(OBJ_CFLAGS) -c $< -o $@

# make test also builds the Windows host (make host-win): its e2e under
# Wine (tests/e2e/test_win_host.sh) is one of the e2e suite's programs.
test: all
	$(Q)tools/deps.sh win64
	+$(Q)tools/cross-win.sh build
	$(Q)O=$(O) tools/run-tests.sh

# Our image in the usual hbbs + hbbr docker-compose, for real (root; it
# starts and stops a dockerd of its own, tests/docker/test_compose.sh).  The
# base image and docker's data stay in $(O)/docker as the cache.
test-docker: all
	$(Q)tools/deps.sh docker
	$(Q)O=$(O) HD_TEST_TIMEOUT=$${HD_TEST_TIMEOUT:-3000} \
		tools/run-tests.sh docker

# The server's .deb under a real systemd (root): a Debian 12 tree booted
# with systemd-nspawn -b (tests/systemd/test_nspawn.sh; the tree is made
# once with debootstrap and kept in $(O)/nspawn: inside the test's time,
# 9 min cold at load 9, hence the limit of test-docker's cold cache).
test-systemd: all
	$(Q)tools/deps.sh systemd
	$(Q)O=$(O) HD_TEST_TIMEOUT=$${HD_TEST_TIMEOUT:-3000} \
		tools/run-tests.sh systemd

# exec: the recipe's shell would die of the Ctrl-C that ends the demo and
# make would report it; the demo itself stops cleanly
demo: all
	$(Q)O=$(O) exec tools/demo.sh

unit: $(TEST_BINS)
	$(Q)O=$(O) tools/run-tests.sh unit

FORMAT_FILES = $(shell git ls-files --cached --others --exclude-standard \
	'*.c' '*.h' 2>/dev/null | \
	grep -v '^third_party/')
format:
	$(Q)$(CLANG_FORMAT) -i $(FORMAT_FILES)

# One clang-format for every file (1.3 s; a process a file took 35 s at
# load), then one line per file that needs it.
format-check:
	$(Q)out=$$($(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES) 2>&1); \
	rc=$$?; printf '%s\n' "$$out" | \
		sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/format: \1 needs clang-format/p' | \
		sort -u; \
	if [ $$rc -ne 0 ] && ! printf '%s\n' "$$out" | grep -q ': error: '; then \
		printf '%s\n' "$$out" | head -5; fi; \
	exit $$rc

clean:
	rm -rf $(O)

help:
	@echo 'make            build every program and test (installs packages)'
	@echo 'make test       build and run every test suite'
	@echo 'make demo       server, host on a private desktop, viewer by ID'
	@echo 'make fuzz       build the libFuzzer targets and run each 60 s'
	@echo 'make bench      run the benchmarks'
	@echo 'make deb       Debian packages of the three programs ($$(O)/deb)'
	@echo 'make install   programs, man pages, units (PREFIX=/usr/local DESTDIR=)'
	@echo 'make server-arm64  homedesk-server for 64-bit ARM (build-arm64/)'
	@echo 'make test-arm64    its integration tests under qemu-user'
	@echo 'make host-win   homedesk-host.exe for Windows (build-win/)'
	@echo 'make test-win   its unit tests and e2e under Wine'
	@echo 'make test-docker   our image in the usual hbbs+hbbr compose (root)'
	@echo 'make test-systemd  the server .deb under systemd-nspawn -b (root)'
	@echo 'make format     reformat;  make format-check  verify format'
	@echo 'options: O=dir V=1 DEVELOPER=1 SANITIZE=address,undefined'

# ($(O)/docker and $(O)/nspawn are make test-docker's and make
# test-systemd's caches: a Debian tree's files, not ours)
-include $(shell find $(O) \( -path $(O)/docker -o -path $(O)/nspawn \) \
	-prune -o -name '*.d' -type f -print 2>/dev/null)
