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
COMMON_SRCS := $(filter-out $(MEDIA_SRCS) $(OS_OTHER),$(wildcard common/*.c \
	common/nat/*.c))
COMMON_OBJS := $(COMMON_SRCS:%.c=$(O)/%.o) $(PROTO_OBJS)
MEDIA_OBJS := $(MEDIA_SRCS:%.c=$(O)/%.o)
LIBCOMMON := $(O)/libhdcommon.a
LIBMEDIA := $(O)/libhdmedia.a

$(COMMON_SRCS:%.c=$(O)/%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON)
$(MEDIA_OBJS): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON) $(PKG_CFLAGS_MEDIA)

$(LIBCOMMON): $(COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBMEDIA): $(MEDIA_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
