# common/: the static library every program links (framing, protobuf,
# addresses, crypto, logging, config, libuv helpers).
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(O)/%.o) $(PROTO_OBJS)
LIBCOMMON := $(O)/libhdcommon.a

$(COMMON_SRCS:%.c=$(O)/%.o): OBJ_CFLAGS = $(PKG_CFLAGS_COMMON)

$(LIBCOMMON): $(COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
