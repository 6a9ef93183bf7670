# SPDX-License-Identifier: Apache-2.0
# mod_uritoken top-level Makefile. Run ./configure first (scripts/build.sh
# configures and builds; scripts/install-deps.sh installs what a fresh
# Debian machine lacks, and scripts/demo.sh and scripts/test.sh run both).
#
#   make              module, library, CLI
#   make check        unit + integration tests (real httpd on loopback)
#   make check-all    lint, check, sanitizers (ASan, TSan), fuzzing (scripts/test.sh runs
#                     these steps plus the client minters)
#   make bench        benchmarks (not in CI)
#   make install      module and a2enmod files, CLI, library, headers,
#                     pkg-config file and man pages (PREFIX, DESTDIR, ...)

-include config.mk
ifeq ($(wildcard config.mk),)
$(error config.mk missing: run ./configure (or bash scripts/build.sh) first)
endif

BUILD := build
CXXSTD := -std=c++17
WARN := -Wall -Wextra -Wshadow -Wno-missing-field-initializers
ifeq ($(CI),true)
WARN += -Werror
endif
OPT ?= -O2 -g
CXXFLAGS_BASE := $(CXXSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden -fvisibility-inlines-hidden \
	-fstack-protector-strong -D_FORTIFY_SOURCE=2 $(SODIUM_CFLAGS) $(OPENSSL_CFLAGS) $(LOC_CFLAGS) $(CURL_CFLAGS)
HTTPD_CPPFLAGS := -I$(APXS_INCLUDEDIR) -I$(APR_INCLUDEDIR) $(if $(APU_INCLUDEDIR),-I$(APU_INCLUDEDIR)) $(APXS_CPPFLAGS)
LIBS := $(SODIUM_LIBS) $(OPENSSL_LIBS)
GTEST_LIBS := -lgtest -lgtest_main -pthread

CORE_SRCS := $(wildcard mod_uritoken/core/*.cc)
LIB_SRCS := mod_uritoken/lib/uritoken.cc
HTTPD_SRCS := $(wildcard mod_uritoken/httpd/*.cc)
CLUSTER_SRCS := $(wildcard mod_uritoken/cluster/*.cc)
UNIT_SRCS := $(wildcard tests/unit/*.cc)
INTEG_SRCS := $(wildcard tests/integration/*.cc)
GOSSIP_SRCS := $(wildcard gossip/*.cc)
GOSSIP_TEST_SRCS := $(wildcard tests/gossip/*.cc)

obj = $(patsubst %.cc,$(BUILD)/obj/%.o,$(1))
CORE_OBJS := $(call obj,$(CORE_SRCS))
LIB_OBJS := $(call obj,$(LIB_SRCS))
HTTPD_OBJS := $(call obj,$(HTTPD_SRCS))
UNIT_OBJS := $(call obj,$(UNIT_SRCS))
INTEG_OBJS := $(call obj,$(INTEG_SRCS))
GOSSIP_OBJS := $(call obj,$(GOSSIP_SRCS))
CLUSTER_OBJS := $(call obj,$(CLUSTER_SRCS))
GOSSIP_TEST_OBJS := $(call obj,$(GOSSIP_TEST_SRCS))

MODULE := $(BUILD)/mod_uritoken.so
CLI := $(BUILD)/uritoken
SHLIB := $(BUILD)/liburitoken.so
STLIB := $(BUILD)/liburitoken.a
UNIT := $(BUILD)/unit_tests
INTEG := $(BUILD)/integration_tests
GOSSIP_TESTS := $(BUILD)/gossip_tests

.PHONY: check-tsan lint-cxx vectors all check check-unit check-gossip check-integration check-all check-asan fuzz fuzz-gossip fuzz-ranges fuzz-client-api lint bench bench-cluster bench-sharing install demo demo-cluster clean
all: $(MODULE) $(CLI) $(SHLIB) $(STLIB)

$(BUILD)/obj/mod_uritoken/httpd/%.o: mod_uritoken/httpd/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_BASE) $(HTTPD_CPPFLAGS) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_BASE) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(MODULE): $(HTTPD_OBJS) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) $(LDFLAGS) -shared -o $@ $^ $(LIBS) $(LOC_LIBS) -Wl,-z,relro,-z,now

# Exports exactly the C API (uritoken.map), nothing of libstdc++'s templates.
$(SHLIB): $(LIB_OBJS) $(CORE_OBJS) mod_uritoken/lib/uritoken.map
	$(CXX) $(LDFLAGS) -shared -Wl,-soname,liburitoken.so.$(SOVERSION) \
		-Wl,--version-script=mod_uritoken/lib/uritoken.map -o $@ $(filter %.o,$^) $(LIBS)

# Rebuilt when the Makefile changes too: a file moved out of core/ must
# leave the archive.
$(STLIB): $(LIB_OBJS) $(CORE_OBJS) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

# The CLI talks to a sidecar (its control protocol), writes its report as JSON and reads
# the node's identity: those parts of cluster/, not the sharing rule or the shared state.
CLI_CLUSTER_OBJS := $(call obj,mod_uritoken/cluster/control.cc mod_uritoken/cluster/control_client.cc mod_uritoken/cluster/json.cc \
	mod_uritoken/cluster/status_report.cc mod_uritoken/cluster/node_identity.cc)
$(CLI): $(call obj,mod_uritoken/cli/uritoken_cli.cc) $(CLI_CLUSTER_OBJS) $(CORE_OBJS)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

# Order-only: tests/unit/cli_control_test.cc runs the CLI binary, and
# c_api_test.cc reads the static library's symbols.
$(UNIT): $(UNIT_OBJS) $(LIB_OBJS) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS) | $(CLI) $(STLIB)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS) $(GTEST_LIBS)

# With the gossip library: tests seal packets to send to a node's gossip
# port; with libloc: they write the location databases they configure.
$(INTEG): $(INTEG_OBJS) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS) $(GTEST_LIBS)

# Gossip library tests: codec, CRDT, membership, and the deterministic
# simulation of many nodes in one process.
$(GOSSIP_TESTS): $(GOSSIP_TEST_OBJS) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS) $(GTEST_LIBS)

$(INTEG_OBJS): CXXFLAGS_BASE += -DHTTPD_BIN='"$(HTTPD)"' -DHTTPD_MODULES='"$(APXS_LIBEXECDIR)"' \
	-DSOURCE_DIR='"$(CURDIR)"' -DBUILD_DIR='"$(CURDIR)/$(BUILD)"'
$(UNIT_OBJS): CXXFLAGS_BASE += -DSOURCE_DIR='"$(CURDIR)"' -DBUILD_DIR='"$(CURDIR)/$(BUILD)"'

check: check-unit check-gossip check-integration

check-gossip: $(GOSSIP_TESTS)
	$(GOSSIP_TESTS) $(GTEST_ARGS)

check-unit: $(UNIT)
	$(UNIT) $(GTEST_ARGS)

check-integration: $(INTEG) $(MODULE) $(CLI)
	$(INTEG) $(GTEST_ARGS)

# Unit tests once more under AddressSanitizer and UBSan, in their own tree.
check-asan:
	$(MAKE) BUILD=$(BUILD)/asan OPT="-O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		CXX="$(CXX) -fsanitize=address,undefined" $(BUILD)/asan/unit_tests $(BUILD)/asan/gossip_tests
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(BUILD)/asan/unit_tests $(GTEST_ARGS)
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(BUILD)/asan/gossip_tests $(GTEST_ARGS)

# ThreadSanitizer on the lock-free parts that several processes or threads
# share: the shared-memory ring and revocation table, the log limit, the
# usage counters (the tests that run them from many threads at once).
# TSan does not model std::atomic_thread_fence (GCC says so with -Wtsan,
# kept as a warning): the revocation table's seqlock fences are checked by
# SharedStateTable.ConcurrentReadersNeverSeeTornOrMissingRecords, not by
# TSan; everything else those tests share is an atomic TSan follows.
TSAN_TESTS ?= SharedState*:LogLimit*:Usage*
check-tsan:
	$(MAKE) BUILD=$(BUILD)/tsan OPT="-O1 -g -fno-omit-frame-pointer" CXX="$(CXX) -fsanitize=thread -Wno-error=tsan" \
		$(BUILD)/tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(BUILD)/tsan/unit_tests --gtest_filter='$(TSAN_TESTS)' $(GTEST_ARGS)

# libFuzzer on the token parser and path decoder, bounded in time.
FUZZ_SECONDS ?= 60
FUZZ_CXX := $(or $(CLANGXX),clang++)
fuzz: $(BUILD)/fuzz_token
	mkdir -p $(BUILD)/fuzz-corpus
	cp tests/fuzz/seeds/* $(BUILD)/fuzz-corpus/ 2>/dev/null || true
	$(BUILD)/fuzz_token -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz-corpus

# The gossip packet decoder, likewise.
fuzz-gossip: $(BUILD)/fuzz_gossip
	mkdir -p $(BUILD)/fuzz-gossip-corpus
	cp tests/fuzz/gossip-seeds/* $(BUILD)/fuzz-gossip-corpus/ 2>/dev/null || true
	$(BUILD)/fuzz_gossip -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz-gossip-corpus

# The shared-range file parser (UriTokenSharedNetworkFile), likewise.
fuzz-ranges: $(BUILD)/fuzz_ranges
	mkdir -p $(BUILD)/fuzz-ranges-corpus
	cp tests/fuzz/ranges-seeds/* $(BUILD)/fuzz-ranges-corpus/ 2>/dev/null || true
	$(BUILD)/fuzz_ranges -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz-ranges-corpus

# The client-site API's request parsers (core/client_api.h), likewise.
fuzz-client-api: $(BUILD)/fuzz_client_api
	mkdir -p $(BUILD)/fuzz-client-api-corpus
	cp tests/fuzz/client-api-seeds/* $(BUILD)/fuzz-client-api-corpus/ 2>/dev/null || true
	$(BUILD)/fuzz_client_api -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz-client-api-corpus

$(BUILD)/fuzz_client_api: tests/fuzz/fuzz_client_api.cc $(CORE_SRCS)
	@mkdir -p $(BUILD)
	$(FUZZ_CXX) $(CXXSTD) -O1 -g -fsanitize=fuzzer,address,undefined $(SODIUM_CFLAGS) $(OPENSSL_CFLAGS) \
		-o $@ $^ $(LIBS)

$(BUILD)/fuzz_ranges: tests/fuzz/fuzz_ranges.cc mod_uritoken/cluster/shared_ranges.cc mod_uritoken/core/ipnet.cc
	@mkdir -p $(BUILD)
	$(FUZZ_CXX) $(CXXSTD) -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $^

$(BUILD)/fuzz_gossip: tests/fuzz/fuzz_gossip.cc $(GOSSIP_SRCS) $(CORE_SRCS)
	@mkdir -p $(BUILD)
	$(FUZZ_CXX) $(CXXSTD) -O1 -g -fsanitize=fuzzer,address,undefined $(SODIUM_CFLAGS) $(OPENSSL_CFLAGS) \
		-o $@ $^ $(LIBS)

$(BUILD)/fuzz_token: tests/fuzz/fuzz_token.cc $(CORE_SRCS) tests/vectors/tokens.txt
	@mkdir -p $(BUILD)
	$(FUZZ_CXX) $(CXXSTD) -O1 -g -fsanitize=fuzzer,address,undefined $(SODIUM_CFLAGS) $(OPENSSL_CFLAGS) \
		-DVECTORS_FILE='"$(CURDIR)/tests/vectors/tokens.txt"' -o $@ $(filter %.cc,$^) $(LIBS)

# The core must stay free of httpd and APR: it is unit-tested and shipped in
# liburitoken without them.
# MACs must be compared in constant time, which no test can observe, so the
# code is checked: equal_constant_time calls CRYPTO_memcmp (or sodium_memcmp)
# and nothing else that compares bytes, token.cc checks the tag with it, and
# no tag or MAC is compared by hand in the core, library or gossip (whose
# packets libsodium's AEAD authenticates). The 4-byte cluster label tag in
# gossip/wire.cc is a public hash that tells clusters apart, not a MAC.
lint:
	@if grep -nE '#include [<"](httpd|http_|ap_|apr|util_)' mod_uritoken/core/*.h mod_uritoken/core/*.cc mod_uritoken/cluster/* mod_uritoken/lib/* gossip/*; then \
		echo "lint: the core, library and gossip must not include httpd or APR headers"; exit 1; fi
	@echo "lint: core, library and gossip are free of httpd/APR includes"
	@# The include direction: core <- gossip <- cluster <- httpd, cli; lib <- core only.
	@bad=$$( { grep -nE '#include "\.\./(cluster|httpd|cli|lib)/|#include "\.\./\.\./gossip/' mod_uritoken/core/*; \
		grep -nE '#include "\.\./mod_uritoken/(cluster|httpd|cli|lib)/' gossip/*; \
		grep -nE '#include "\.\./(cluster|httpd|cli)/|#include "\.\./\.\./gossip/' mod_uritoken/lib/*; \
		grep -nE '#include "\.\./(httpd|cli)/' mod_uritoken/cluster/*; } ); \
	if [ -n "$$bad" ]; then printf '%s\n' "$$bad"; \
		echo "lint: an include against the direction core <- gossip <- cluster <- httpd/cli (lib: core only)"; exit 1; fi
	@echo "lint: includes follow core <- gossip <- cluster <- httpd/cli, and the library uses core only"
	@dups=$$(grep -rhoE '"UT[0-9]{5}' mod_uritoken gossip | tr -d '"' | sort | uniq -d); \
	if [ -n "$$dups" ]; then echo "lint: log message ids used more than once: $$dups"; exit 1; fi
	@missing=$$(for id in $$(grep -rhoE 'UT[0-9]{5}' mod_uritoken gossip | sort -u); do \
		grep -q "^| $$id |" docs/log-messages.md || echo $$id; done); \
	if [ -n "$$missing" ]; then echo "lint: log message ids missing from docs/log-messages.md: $$missing"; exit 1; fi
	@echo "lint: every log message id is used once and documented"
	@missing=$$(git ls-files '*.cc' '*.h' '*.hpp' '*.sh' '*.py' '*.php' '*.js' Makefile configure.ac .ci/run 2>/dev/null \
		| while read -r f; do grep -q 'SPDX-License-Identifier: Apache-2.0' "$$f" || echo "$$f"; done); \
	if [ -n "$$missing" ]; then echo "lint: no SPDX-License-Identifier: Apache-2.0 line (see LICENSE) in: $$missing"; exit 1; fi
	@echo "lint: every source file names its license (SPDX, Apache-2.0)"
	@python3 scripts/check-defaults.py .
	@command -v promtool >/dev/null || { echo "lint: promtool missing: run bash scripts/install-deps.sh"; exit 1; }
	@promtool check config conf-examples/prometheus.yml >/dev/null && promtool check rules conf-examples/uritoken-alerts.yml >/dev/null \
		|| { echo "lint: conf-examples/prometheus.yml or uritoken-alerts.yml do not pass promtool"; exit 1; }
	@echo "lint: the Prometheus examples pass promtool"
	@body=$$(awk '/^bool equal_constant_time\(/ { f = 1 } f { print } f && /^}/ { exit }' mod_uritoken/core/hmac.cc); \
	if ! printf '%s\n' "$$body" | grep -qE '(CRYPTO|sodium)_memcmp\('; then \
		echo "lint: mod_uritoken/core/hmac.cc: equal_constant_time must compare with CRYPTO_memcmp or sodium_memcmp"; exit 1; fi; \
	if printf '%s\n' "$$body" | sed -E 's/(CRYPTO|sodium)_memcmp//g' | grep -qE 'memcmp|bcmp|strn?cmp|std::equal|for *\('; then \
		echo "lint: mod_uritoken/core/hmac.cc: equal_constant_time compares bytes by other means than CRYPTO_memcmp (not constant-time)"; exit 1; fi
	@if ! grep -qE 'equal_constant_time\(tag, ' mod_uritoken/core/token.cc; then \
		echo "lint: mod_uritoken/core/token.cc: verify_token must compare the tag with equal_constant_time"; exit 1; fi
	@if ! grep -qE 'equal_constant_time\(mac, auth.signature' mod_uritoken/core/client_api.cc; then \
		echo "lint: mod_uritoken/core/client_api.cc: authenticate must compare the signature with equal_constant_time"; exit 1; fi
	@if grep -nE 'memcmp|bcmp|strn?cmp|std::equal|==|!=' mod_uritoken/core/*.h mod_uritoken/core/*.cc mod_uritoken/cluster/* mod_uritoken/lib/* gossip/*.h gossip/*.cc \
		| grep -iE '(^|[^a-z0-9_])([a-z0-9_]*_)?(tags?|macs?)(_[a-z0-9_]*)?([^a-z0-9_]|$$)|k(tag|mac)(bytes|size)|abytes' \
		| grep -vE '^gossip/wire.cc:[0-9]+:.*(OpenResult::kLabel|our_label = std::memcmp)'; then \
		echo "lint: a tag or MAC is compared above with memcmp, ==, != or std::equal: use equal_constant_time (core) or let libsodium verify it (gossip)"; exit 1; fi
	@if ! grep -q 'crypto_aead_xchacha20poly1305_ietf_decrypt(' gossip/wire.cc; then \
		echo "lint: gossip/wire.cc must open packets with crypto_aead_xchacha20poly1305_ietf_decrypt, which checks the MAC"; exit 1; fi
	@echo "lint: MACs are compared in constant time only (equal_constant_time, libsodium AEAD)"
	@$(MAKE) --no-print-directory lint-cxx

# C++ style and static checks (part of lint): clang-format (.clang-format)
# on every C++ file, clang-tidy (.clang-tidy: bug-prone patterns, functions
# of at most 80 lines) and cppcheck on the module, gossip, library and CLI.
CXX_FILES = $(shell git ls-files '*.cc' '*.h' '*.hpp' 2>/dev/null || find mod_uritoken gossip tests -name '*.cc' -o -name '*.h')
TIDY_SRCS := $(CORE_SRCS) $(CLUSTER_SRCS) $(LIB_SRCS) mod_uritoken/cli/uritoken_cli.cc $(GOSSIP_SRCS)
lint-cxx:
	@clang-format --dry-run --Werror $(CXX_FILES) 2>&1 | head -20; \
	if ! clang-format --dry-run --Werror $(CXX_FILES) >/dev/null 2>&1; then \
		echo "lint: the files above drift from .clang-format: run clang-format -i on them"; exit 1; fi
	@echo "lint: every C++ file follows .clang-format"
	@for f in $(TIDY_SRCS); do clang-tidy -quiet $$f -- $(CXXSTD) $(SODIUM_CFLAGS) $(LOC_CFLAGS) 2>/dev/null || exit 1; done && \
	for f in $(HTTPD_SRCS); do clang-tidy -quiet $$f -- $(CXXSTD) $(HTTPD_CPPFLAGS) 2>/dev/null || exit 1; done \
		|| { echo "lint: clang-tidy (.clang-tidy) found the problems above"; exit 1; }
	@echo "lint: clang-tidy finds no bug-prone pattern and no function over 80 lines"
	@cppcheck --enable=warning,portability --error-exitcode=1 --std=c++17 --quiet --inline-suppr \
		mod_uritoken/core mod_uritoken/cluster mod_uritoken/lib mod_uritoken/cli gossip \
		&& cppcheck --enable=warning,portability --error-exitcode=1 --std=c++17 --quiet --inline-suppr \
		mod_uritoken/httpd || { echo "lint: cppcheck found the problems above"; exit 1; }
	@echo "lint: cppcheck finds nothing"

check-all: lint check check-asan check-tsan fuzz fuzz-gossip fuzz-ranges fuzz-client-api

$(BUILD)/verify_bench: $(call obj,tests/bench/verify_bench.cc) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) -lbenchmark -pthread
$(BUILD)/mint_many: $(call obj,tests/bench/mint_many.cc) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS)

# Benchmarks: verify cost (Google Benchmark) and loopback throughput with
# wrk, tokenized vs plain, side by side. Not part of CI.
bench: all $(BUILD)/verify_bench $(BUILD)/mint_many
	bash tests/bench/run.sh

$(BUILD)/gossip_sim_bench: $(call obj,tests/bench/gossip_sim_bench.cc) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS)

$(BUILD)/state_memory: $(call obj,tests/bench/state_memory.cc) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS)
CLUSTER_BENCH_OBJS := $(call obj,tests/bench/cluster_bench.cc tests/integration/httpd_fixture.cc)
$(call obj,tests/bench/cluster_bench.cc): CXXFLAGS_BASE += -DHTTPD_BIN='"$(HTTPD)"' \
	-DHTTPD_MODULES='"$(APXS_LIBEXECDIR)"' -DSOURCE_DIR='"$(CURDIR)"' -DBUILD_DIR='"$(CURDIR)/$(BUILD)"'
$(BUILD)/cluster_bench: $(CLUSTER_BENCH_OBJS)
	$(CXX) -o $@ $^ -pthread

# Cluster benchmarks: the 1,000-node simulation, per-node memory, and a
# real 5-node loopback cluster. Not part of CI.
$(BUILD)/chaos_bench: $(call obj,tests/bench/chaos_bench.cc) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS)

# The sharing rule against a seeded model of real viewers' addresses
# (docs/sharing-rule.md): false revocations per honest behaviour and
# detection per sharing pattern, with and without the location database.
$(BUILD)/sharing_bench: $(call obj,tests/bench/sharing_bench.cc) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS)

SHARING_NODES_OBJS := $(call obj,tests/bench/sharing_nodes_bench.cc tests/integration/httpd_fixture.cc)
$(call obj,tests/bench/sharing_nodes_bench.cc): CXXFLAGS_BASE += -DHTTPD_BIN='"$(HTTPD)"' \
	-DHTTPD_MODULES='"$(APXS_LIBEXECDIR)"' -DSOURCE_DIR='"$(CURDIR)"' -DBUILD_DIR='"$(CURDIR)/$(BUILD)"'
$(BUILD)/sharing_nodes_bench: $(SHARING_NODES_OBJS) $(CLUSTER_OBJS) $(GOSSIP_OBJS) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS) $(LOC_LIBS) $(GTEST_LIBS) -pthread

# The simulated part (seconds), then the same model, smaller, on three real
# httpd nodes (a few minutes: SHARING_NODE_SESSIONS per behaviour).
bench-sharing: all $(BUILD)/sharing_bench $(BUILD)/sharing_nodes_bench
	$(BUILD)/sharing_bench $(SHARING_SESSIONS)
	$(BUILD)/sharing_nodes_bench $(SHARING_NODE_SESSIONS)

bench-cluster: all $(BUILD)/mint_many $(BUILD)/gossip_sim_bench $(BUILD)/state_memory $(BUILD)/cluster_bench $(BUILD)/chaos_bench
	bash tests/bench/cluster.sh

demo: all
	bash scripts/demo.sh

demo-cluster: all
	bash scripts/demo-cluster.sh

# Installation. PREFIX (default /usr/local) holds the CLI, library, headers,
# pkg-config file and man pages; LIBDIR may be a multiarch directory
# (debian/rules passes /usr/lib/<triplet>). The module goes where apxs says
# httpd's modules are, and uritoken.load/.conf to Debian's mods-available for
# a2enmod; an existing uritoken.conf there is kept (it is the admin's).
# DESTDIR stages everything under another root (packaging).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
# The DNS-01 hook and the PowerDNS helpers (dns/, docs/https.md), where
# conf-examples/https-node.conf names them.
HELPERDIR ?= $(PREFIX)/lib/uritoken
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
APACHE_MODULEDIR ?= $(APXS_LIBEXECDIR)
APACHE_MODS_AVAILABLE ?= $(or $(APXS_SYSCONFDIR),/etc/apache2)/mods-available
VERSION := $(or $(PACKAGE_VERSION),$(shell sed -n 's/^AC_INIT(\[mod_uritoken\], \[\([^]]*\)\]).*/\1/p' configure.ac))
SOVERSION := 0

$(BUILD)/uritoken.pc: mod_uritoken/lib/uritoken.pc.in config.mk
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@
$(BUILD)/uritoken.load: apache2/uritoken.load.in config.mk
	@mkdir -p $(BUILD)
	sed -e 's|@APACHE_MODULEDIR@|$(APACHE_MODULEDIR)|' $< > $@
.PHONY: $(BUILD)/uritoken.pc $(BUILD)/uritoken.load  # their values come from the command line too

install: all $(BUILD)/uritoken.pc $(BUILD)/uritoken.load
	install -d $(DESTDIR)$(APACHE_MODULEDIR) $(DESTDIR)$(APACHE_MODS_AVAILABLE) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(HELPERDIR)
	install -m 644 $(MODULE) $(DESTDIR)$(APACHE_MODULEDIR)/mod_uritoken.so
	install -m 644 $(BUILD)/uritoken.load $(DESTDIR)$(APACHE_MODS_AVAILABLE)/uritoken.load
	@if [ -e $(DESTDIR)$(APACHE_MODS_AVAILABLE)/uritoken.conf ]; then \
		echo "install: keeping $(DESTDIR)$(APACHE_MODS_AVAILABLE)/uritoken.conf (the new default is apache2/uritoken.conf)"; \
	else echo "install -m 644 apache2/uritoken.conf $(DESTDIR)$(APACHE_MODS_AVAILABLE)/uritoken.conf"; \
		install -m 644 apache2/uritoken.conf $(DESTDIR)$(APACHE_MODS_AVAILABLE)/uritoken.conf; fi
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/uritoken
	install -m 644 $(SHLIB) $(DESTDIR)$(LIBDIR)/liburitoken.so.$(VERSION)
	ln -sf liburitoken.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liburitoken.so.$(SOVERSION)
	ln -sf liburitoken.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/liburitoken.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/liburitoken.a
	install -m 644 mod_uritoken/lib/uritoken.h mod_uritoken/lib/uritoken.hpp $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/uritoken.pc $(DESTDIR)$(PKGCONFIGDIR)/uritoken.pc
	install -m 644 man/uritoken.1 $(DESTDIR)$(MANDIR)/man1/uritoken.1
	install -m 644 man/mod_uritoken.8 $(DESTDIR)$(MANDIR)/man8/mod_uritoken.8
	install -m 755 dns/uritoken-dns01-hook dns/uritoken-pdns-zone $(DESTDIR)$(HELPERDIR)/
	install -m 644 dns/pdns-update-policy.lua $(DESTDIR)$(HELPERDIR)/

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Regenerates the known-answer vectors (only when the format changes).
$(BUILD)/make_vectors: $(call obj,tests/vectors/make_vectors.cc) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS)
$(BUILD)/make_client_vectors: $(call obj,tests/vectors/make_client_vectors.cc) $(CORE_OBJS)
	$(CXX) -o $@ $^ $(LIBS)
vectors: $(BUILD)/make_vectors $(BUILD)/make_client_vectors
	$(BUILD)/make_vectors > tests/vectors/tokens.txt
	$(BUILD)/make_vectors hosts > tests/vectors/host-names.txt
	$(BUILD)/make_client_vectors > tests/vectors/client-requests.txt
	$(BUILD)/make_client_vectors return > tests/vectors/return-urls.txt
