# Parley - build, test, run, bench. Objects go to $(BUILD)/, never into the source tree.
#   make            build every binary (build/bin/)
#   make test       install what is missing, then unit, sanitizer, fuzz and integration tests
#   make run        install what is missing, then run the local stack (Ctrl-C stops it)
#   make bench      benchmarks, side by side with their baselines
#   make sanitize   build with AddressSanitizer + UndefinedBehaviorSanitizer into build/asan/
#   make test-deploy the docker-compose stack on podman: images, compose config, end-to-end
#                   (make test runs it last); scripts/compose.sh up|down runs it for people

BUILD    ?= build
CC       ?= cc
PKGS     := libczmq libzmq msgpack jansson libcurl hiredis libcrypto
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
override LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
# pulls common/pid_cache.c out of libparley.a: getpid() without a system call (see that file)
PID_CACHE := -Wl,--undefined=getpid
LWS_LIBS := $(shell pkg-config --libs libwebsockets 2>/dev/null) -lev

LIB_SRC    := $(wildcard proto/*.c) $(wildcard common/*.c)
BROKER_SRC := $(wildcard broker/*.c)
ECHO_SRC   := $(wildcard workers/echo/*.c)
PRESENCE_SRC := $(wildcard workers/presence/*.c)
JIRA_SRC   := $(wildcard workers/jira/*.c)
GATEWAY_SRC := $(wildcard gateway/*.c)
PARLEYCTL_SRC := $(wildcard parleyctl/*.c)
PROBE_SRC  := tests/tools/parley_probe.c
STORE_PROBE_SRC := tests/tools/store_probe.c
PRESENCE_SIM_SRC := tests/tools/presence_sim.c
UNIT_SRC   := $(wildcard tests/unit/*.c)
BENCH_SRC  := $(wildcard bench/*.c)
RELAY_LWS_SRC := bench/relay/relay_lws.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB     := $(BUILD)/libparley.a
BINS    := $(BUILD)/bin/parley-broker $(BUILD)/bin/parley-echo $(BUILD)/bin/parley-presence \
           $(BUILD)/bin/parley-jira $(BUILD)/bin/parley-gateway $(BUILD)/bin/parleyctl \
           $(BUILD)/bin/parley-probe \
           $(BUILD)/bin/store-probe $(BUILD)/bin/presence-sim $(BUILD)/bin/unit-tests
BENCHES := $(BUILD)/bin/parley-bench $(BUILD)/bin/parley-relay-lws $(BUILD)/bin/parley-wsload

.PHONY: all deps test run bench sanitize unit fuzz integration clean format test-deploy
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/bin/parley-broker: $(call obj,$(BROKER_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/parley-echo: $(call obj,$(ECHO_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/parley-presence: $(call obj,$(PRESENCE_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/parley-gateway: $(call obj,$(GATEWAY_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS) $(LWS_LIBS)

$(BUILD)/bin/parley-jira: $(call obj,$(JIRA_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/parleyctl: $(call obj,$(PARLEYCTL_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/parley-probe: $(call obj,$(PROBE_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/store-probe: $(call obj,$(STORE_PROBE_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/presence-sim: $(call obj,$(PRESENCE_SIM_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

# (the gateway's topic registry is tested alone: it needs nothing else of the gateway)
$(BUILD)/bin/unit-tests: $(call obj,$(UNIT_SRC)) $(BUILD)/obj/gateway/gateway_topics.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/bin/parley-bench: $(call obj,$(BENCH_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PID_CACHE) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/parley-relay-lws: $(call obj,$(RELAY_LWS_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LWS_LIBS)

$(BUILD)/bin/parley-wsload: $(call obj,$(wildcard bench/wsload/*.c))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ -lcrypto -lpthread -lm

deps:
	@scripts/deps.sh

sanitize:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" all

unit: all
	$(BUILD)/bin/unit-tests

fuzz:
	@scripts/fuzz.sh

integration: all sanitize
	PARLEY_BIN=build/asan/bin /usr/bin/python3 -m pytest -q tests/integration

test: deps
	@scripts/test.sh

test-deploy:
	@scripts/compose.sh test

run: deps all
	@scripts/run-local.sh

bench: deps all $(BENCHES)
	@scripts/bench.sh

format:
	clang-format -i $(LIB_SRC) $(BROKER_SRC) $(ECHO_SRC) $(PRESENCE_SRC) $(JIRA_SRC) $(GATEWAY_SRC) $(PROBE_SRC) \
	  $(STORE_PROBE_SRC) $(PRESENCE_SIM_SRC) $(PARLEYCTL_SRC) \
	  $(UNIT_SRC) $(BENCH_SRC) \
	  $(wildcard proto/*.h common/*.h broker/*.h workers/*/*.h)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
