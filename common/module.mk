# common/: the static library every program links (framing, protobuf,
# addresses, crypto, logging, config, libuv helpers, NAT traversal in
# common/nat/), and beside it the
# media library (VP9 encoder and decoder with libvpx + libyuv; clipboard
# text and file transfer blocks with zstd) that only the host and the
# viewer link, so the server builds without media packages.
MEDIA_SRCS := common/venc.c common/venc_conv.c common/vdec.c common/clip.c common/files.c \
	common/tiles.c common/venc_tiles.c \
	common/squeeze.c
# the OS layer: one file per system (os.h)
OS_OTHER := common/os_$(if $(HD_WIN),posix,win).c
# port mapping (common/nat/map.h): a library of its own, with libminiupnpc,
# for the programs that map ports (the host and its tests)
NATMAP_SRCS := common/nat/map.c common/nat/natpmp.c common/nat/igd.c
COMMON_SRCS := $(filter-out $(MEDIA_SRCS) $(OS_OTHER) $(NATMAP_SRCS),\
	$(wildcard common/*.c common/nat/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(O)/%.o) $(PROTO_OBJS)
MEDIA_OBJS := $(MEDIA_SRCS:%.c=$(O)/%.o)
NATMAP_OBJS := $(NATMAP_SRCS:%.c=$(O)/%.o)
LIBCOMMON := $(O)/libhdcommon.a
LIBMEDIA := $(O)/libhdmedia.a
LIBNATMAP := $(O)/libhdnatmap.a

$(COMMON_SRCS:%.c=$(O)/%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON)
$(MEDIA_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_MEDIA)
# (miniupnpc's flags come with the host's)
$(NATMAP_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_HOST)

$(LIBCOMMON): $(COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBMEDIA): $(MEDIA_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBNATMAP): $(NATMAP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
