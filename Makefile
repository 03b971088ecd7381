# Set-up, build, run and test in one place. Every target installs the Debian packages it needs
# (only the missing ones) before building.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
BROKER_ARGS ?=

PACKAGES := g++ cmake make pkg-config libboost1.81-dev libboost-json1.81-dev \
            libboost-program-options1.81-dev prometheus-cpp-dev libsystemd-dev libgtest-dev
# What the tests run besides the broker: a real Prometheus and promtool, systemd-analyze, and
# Python's YAML reader for the compose and provisioning files.
TEST_PACKAGES := clang-format prometheus systemd python3 python3-yaml

.PHONY: deps test-deps install-missing build run-broker test format-check bench-delivery clean

deps:
	@$(MAKE) --no-print-directory install-missing WANTED="$(PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory install-missing WANTED="$(PACKAGES) $(TEST_PACKAGES)"

install-missing:
	@missing=$$(for p in $(WANTED); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGOPHERMQ_WERROR=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)

run-broker: build
	./$(BUILD_DIR)/gophermq broker $(BROKER_ARGS)

test: test-deps build format-check
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Subject-index cost and 10 000 concurrent long polls; results are recorded in docs/delivery.md.
bench-delivery: build
	bench/delivery.sh $(BUILD_DIR)

format-check: test-deps
	clang-format --dry-run -Werror $$(find app bench broker config http metrics test -name '*.cpp' -o -name '*.hpp')

clean:
	rm -rf $(BUILD_DIR)
