# mcp-guard - build, test and lint. See README.md and docs/dev/building.md.
#
#   make              build build/mcp-guard (and the test tools)
#   make run          install what is missing, build, start in front of server-everything
#   make test         the whole gate CI runs: deps, lint, unit, toml-test, e2e, ASan suite
#   make check        unit + toml-test + e2e on the normal build (fast loop)
#   make check-asan   unit + e2e under AddressSanitizer + UBSan
#   make lint         clang-format check, cppcheck, banned functions
#   make fuzz         build libFuzzer targets (clang); make fuzz-run FUZZ_SECONDS=60
#   make install      binary, man pages, systemd unit, logrotate (PREFIX, DESTDIR)
#   make deploy-check the unit verifies, man pages render, manifests parse (offline)

BUILD    ?= build
CC       ?= cc
PKGS     := libevent libevent_openssl libevent_pthreads libcurl openssl jansson hiredis yaml-0.1
VERSION  := $(shell cat VERSION)

# libcurl is not linked: src/http/client.c dlopen()s it when a configuration
# needs outgoing HTTP (JWKS), so an idle gateway does not map it and the 27
# libraries it depends on (Debian 12). Its headers are still used for types and constants.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

V        ?= 0
Q        := $(if $(filter 1,$(V)),,@)
OPT      ?= -O2 -g
SAN      ?=
WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?=
CFLAGS   += -std=c17 $(OPT) $(WARN) $(SAN) -D_GNU_SOURCE -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) \
            -MMD -MP -fno-strict-aliasing
LDFLAGS  += $(SAN)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/*.c tests/unit/*/*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(filter-out tests/unit/support%,$(UNIT_SRC)))
TOOL_BIN := $(BUILD)/toml-decoder $(BUILD)/yaml-decoder

.PHONY: all run test check unit toml-test redis-test e2e check-asan lint fuzz fuzz-run deps deps-test \
        clean bench docs-check docs-reference format install uninstall deploy-check man-reference
.DEFAULT_GOAL := all

all: $(BUILD)/mcp-guard $(TOOL_BIN)

$(BUILD)/gen/build-info.h: FORCE
	@sh scripts/build-info.sh "$@" "$(CC)" "$(VERSION)"

FORCE:

$(BUILD)/obj/%.o: %.c | $(BUILD)/gen/build-info.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmg.a: $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

$(BUILD)/mcp-guard: $(MAIN_OBJ) $(BUILD)/libmg.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/toml-decoder: $(BUILD)/obj/tests/toml/decoder.o $(BUILD)/libmg.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/yaml-decoder: $(BUILD)/obj/tests/toml/decoder.o $(BUILD)/libmg.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# (unit tests link zlib themselves: test_util inflates what src/util/gzip.c,
# which loads zlib with dlopen, compressed)
$(BUILD)/unit/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libmg.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS) -lz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- dependencies -----------------------------------------------------------
deps:
	@sh scripts/deps.sh run

deps-test:
	@sh scripts/deps.sh test

# ---- run --------------------------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/run.sh

# ---- tests ------------------------------------------------------------------
unit: $(UNIT_BIN)
	@$(UNIT_RUN) sh scripts/run-unit.sh $(UNIT_BIN)

toml-test: $(BUILD)/toml-decoder
	@sh scripts/toml-test.sh $(BUILD)/toml-decoder

e2e: $(BUILD)/mcp-guard
	@MCP_GUARD_BIN=$(abspath $(BUILD)/mcp-guard) sh scripts/e2e.sh

# The rate limiter against a real redis-server (tests/redis/run.sh starts and stops it).
redis-test: $(BUILD)/libmg.a
	@BUILD=$(BUILD) sh tests/redis/run.sh

check: all unit toml-test redis-test e2e

check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all check

# The unit tests under ThreadSanitizer: the audit ring is lock-free, the
# trace exporter, pins writer and audit writer are threads (a race fails
# the test binary with TSan's report); then the e2e tests that drive those
# threads in the real gateway (scripts/e2e-tsan.sh). Run without address randomization
# when the host allows it: gcc 12's TSan refuses the mappings of kernels
# with more mmap entropy.
check-tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" \
	  UNIT_RUN="$$(setarch "$$(uname -m)" -R true 2>/dev/null && echo setarch "$$(uname -m)" -R)" \
	  unit build-tsan/mcp-guard
	@sh scripts/e2e-tsan.sh build-tsan/mcp-guard

# Regenerates the reference tables embedded in docs/configuration.md.
docs-reference: $(BUILD)/mcp-guard
	@node -e 'const fs=require("fs"),cp=require("child_process");const f="docs/configuration.md";let t=fs.readFileSync(f,"utf8");const b="<!-- BEGIN GENERATED REFERENCE -->\n",e="<!-- END GENERATED REFERENCE -->";const r=cp.execFileSync(process.argv[1],["config-reference"],{encoding:"utf8"});t=t.slice(0,t.indexOf(b)+b.length)+r+t.slice(t.indexOf(e));fs.writeFileSync(f,t)' $(BUILD)/mcp-guard

docs-check: $(BUILD)/mcp-guard
	@MCP_GUARD_BIN=$(abspath $(BUILD)/mcp-guard) sh scripts/docs-check.sh

# Regenerates the reference embedded in the mcp-guard.toml(5) man page.
man-reference: $(BUILD)/mcp-guard
	@sh scripts/man-reference.sh $(BUILD)/mcp-guard deploy/man/mcp-guard.toml.5

# ---- install ----------------------------------------------------------------
# GNU layout; DESTDIR stages a package. The configuration lives in
# $(SYSCONFDIR)/mcp-guard and is never overwritten; `uninstall` keeps it.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/mcp-guard
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
INSTALL        ?= install

$(BUILD)/mcp-guard.toml.example: $(BUILD)/mcp-guard
	$(Q)$(BUILD)/mcp-guard init --force --output $@ >/dev/null

install: $(BUILD)/mcp-guard $(BUILD)/mcp-guard.toml.example
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR)/prometheus $(DESTDIR)$(DOCDIR)/grafana \
	  $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/mcp-guard
	$(INSTALL) -m 0755 $(BUILD)/mcp-guard $(DESTDIR)$(BINDIR)/mcp-guard
	$(INSTALL) -m 0644 deploy/man/mcp-guard.1 $(DESTDIR)$(MANDIR)/man1/mcp-guard.1
	$(INSTALL) -m 0644 deploy/man/mcp-guard.toml.5 $(DESTDIR)$(MANDIR)/man5/mcp-guard.toml.5
	$(INSTALL) -m 0644 $(BUILD)/mcp-guard.toml.example $(DESTDIR)$(DOCDIR)/mcp-guard.toml.example
	$(INSTALL) -m 0644 examples/*.toml examples/*.yaml $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -m 0644 deploy/prometheus/mcp-guard.rules.yml $(DESTDIR)$(DOCDIR)/prometheus/
	$(INSTALL) -m 0644 deploy/grafana/mcp-guard.json $(DESTDIR)$(DOCDIR)/grafana/
	sed -e 's|/usr/local/bin/mcp-guard|$(BINDIR)/mcp-guard|g' \
	    -e 's|/etc/mcp-guard/|$(SYSCONFDIR)/mcp-guard/|g' deploy/systemd/mcp-guard.service \
	  > $(DESTDIR)$(SYSTEMDUNITDIR)/mcp-guard.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/mcp-guard.service
	$(INSTALL) -m 0644 deploy/systemd/mcp-guard.sysusers $(DESTDIR)$(SYSUSERSDIR)/mcp-guard.conf
	$(INSTALL) -m 0644 deploy/logrotate/mcp-guard $(DESTDIR)$(SYSCONFDIR)/logrotate.d/mcp-guard
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/mcp-guard/mcp-guard.toml ]; then \
	  echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/mcp-guard/mcp-guard.toml"; \
	else \
	  $(INSTALL) -m 0640 $(BUILD)/mcp-guard.toml.example \
	    $(DESTDIR)$(SYSCONFDIR)/mcp-guard/mcp-guard.toml; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mcp-guard $(DESTDIR)$(MANDIR)/man1/mcp-guard.1 \
	  $(DESTDIR)$(MANDIR)/man5/mcp-guard.toml.5 $(DESTDIR)$(SYSTEMDUNITDIR)/mcp-guard.service \
	  $(DESTDIR)$(SYSUSERSDIR)/mcp-guard.conf $(DESTDIR)$(SYSCONFDIR)/logrotate.d/mcp-guard
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/mcp-guard (configuration); remove it by hand"

# Offline checks of deploy/: install into a scratch DESTDIR, verify the unit
# (systemd-analyze), render the man pages without warnings, parse the
# Kubernetes manifests and check the Docker build context.
deploy-check: $(BUILD)/mcp-guard $(BUILD)/yaml-decoder
	@BUILD=$(BUILD) sh scripts/deploy-check.sh

# A short fuzz smoke run per parser in CI; long runs are `make fuzz-run`.
FUZZ_SMOKE_SECONDS ?= 15

test: deps-test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory check docs-check deploy-check
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-tsan
	@$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

lint:
	@sh scripts/lint.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

# ---- fuzzing (clang + libFuzzer) -------------------------------------------
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 30

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="-O1 -g" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/libmg.a
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libmg.a
	clang -std=c17 -O1 -g -D_GNU_SOURCE -Isrc -Ibuild-fuzz/gen $(PKG_CFLAGS) \
	  -fsanitize=fuzzer,address,undefined -o $@ $< build-fuzz/libmg.a $(LDLIBS)

fuzz-run: fuzz
	@sh scripts/fuzz-run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

bench: all
	@sh bench/run.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz
