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
