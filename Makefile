# Set-up, build, run and test in one place. Every target installs the Debian packages it needs
# (only the missing ones) before building. `make test` is what CI runs: the suite in a plain build,
# then again under ASan+UBSan (Clang, with the fuzzers) and under TSan (GCC).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
BROKER_ARGS ?=

PACKAGES := g++ cmake make ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev \
            libboost-program-options1.81-dev prometheus-cpp-dev libsystemd-dev libyaml-cpp-dev \
            libgtest-dev libssl-dev
# What the tests run besides the broker: a real Prometheus and promtool, systemd-analyze, and
# Python's YAML reader for the compose and provisioning files; headless Chromium and the DevTools
# client that drives it for the browser test (ctest -L browser); the JSON Schema validator of the
# OpenAPI contract test (ctest -L openapi); curl and the openssl CLI for the TLS test.
TEST_PACKAGES := clang-format prometheus systemd python3 python3-yaml clang libclang-rt-14-dev \
                 chromium python3-websocket python3-jsonschema curl openssl
FUZZ_SECONDS ?= 30
# The sanitizer builds are compiled at -O1 -g1, as the sanitizers' own docs advise: line tables
# are all their reports need, and full debug info at -O2 costs GCC nearly twice the compile time.
# Ninja schedules every target's compiles in one queue: a test's sources compile while the library
# it links is still being built, so neither core idles at a target's last long source file. A build
# directory first configured with another generator keeps it (CMake cannot switch one).
GENERATOR = $(if $(wildcard $(1)/CMakeCache.txt),,-G Ninja)
SANITIZER_CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
                         -DGOPHERMQ_WERROR=ON

.PHONY: deps test-deps install-missing build run-broker test test-plain test-asan test-tsan \
        format-check bench-delivery bench-compare bench-memory bench-storage soak clean

deps:
	@$(MAKE) --no-print-directory install-missing WANTED="$(PACKAGES)"

# Node.js and npm run the OpenAPI linter; a node already installed (from elsewhere) is kept.
test-deps:
	@$(MAKE) --no-print-directory install-missing WANTED="$(PACKAGES) $(TEST_PACKAGES)"
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory install-missing WANTED="nodejs npm"

install-missing:
	@missing=$$(for p in $(WANTED); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD_DIR) $(call GENERATOR,$(BUILD_DIR)) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGOPHERMQ_WERROR=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)

run-broker: build
	./$(BUILD_DIR)/gophermq broker $(BROKER_ARGS)

test: test-plain test-asan test-tsan

test-plain: test-deps build format-check
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, then each libFuzzer target
# for FUZZ_SECONDS (alone, so the timing-sensitive tests do not share the cores with them).
test-asan: test-deps
	CC=clang CXX=clang++ cmake -S . -B build-asan $(call GENERATOR,build-asan) $(SANITIZER_CMAKE_FLAGS) \
	  -DGOPHERMQ_SANITIZE=address,undefined -DGOPHERMQ_FUZZ=ON -DGOPHERMQ_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build-asan -j $(JOBS)
	test/sanitized_ctest.sh build-asan -j $(JOBS) -LE fuzz
	test/sanitized_ctest.sh build-asan -j $(JOBS) -L fuzz

# The whole suite under ThreadSanitizer: proof that the strand design has no data race.
test-tsan: test-deps
	cmake -S . -B build-tsan $(call GENERATOR,build-tsan) $(SANITIZER_CMAKE_FLAGS) -DGOPHERMQ_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	test/sanitized_ctest.sh build-tsan -j $(JOBS)

# Subject-index cost and 10 000 concurrent long polls; results are recorded in docs/delivery.md.
bench-delivery: build
	bench/delivery.sh $(BUILD_DIR)

# GopherMQ against nginx `return 200` and Nchan under the same wrk load; docs/performance.md.
bench-compare: build
	@$(MAKE) --no-print-directory install-missing WANTED="wrk nginx-light libnginx-mod-nchan curl gnuplot-nox"
	PLOT=$(PLOT) bench/compare.sh $(BUILD_DIR)

# What a million stored 16-byte messages cost in RSS, and the peaks filling and fetching them.
bench-memory: build
	python3 bench/memory.py $(BUILD_DIR)/gophermq

# What durable storage costs: publish with each fsync mode against memory only, batch publish,
# log bytes per message and restart time with a million pending; results in docs/storage.md.
bench-storage: build
	bench/storage.sh $(BUILD_DIR)

# Three minutes of honest and hostile clients; the figures are recorded in docs/reliability.md.
SOAK_SECONDS ?= 180
soak: build
	python3 bench/soak.py $(BUILD_DIR)/gophermq --duration $(SOAK_SECONDS)

format-check: test-deps
	clang-format --dry-run -Werror $$(find app auth bench broker config http metrics service storage test -name '*.cpp' -o -name '*.hpp')

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan
