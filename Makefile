# Thin wrapper around meson so the two README commands work on a fresh Debian machine.
#   make          build into build/
#   make deps     install missing Debian packages (idempotent)
#   make test     deps, build, unit tests (meson test), integration tests (pytest, real servers)
#   make demo     deps, build, start the sandbox in demo/ and print how to connect
#   make demo-down   stop the demo sandbox

BUILD   ?= build
WERROR  ?= false
PYTEST  ?= /usr/bin/python3 -m pytest
DEMO    ?= $(CURDIR)/demo

.PHONY: all build deps test unit integration demo demo-down clang bench clean

all: build

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=$(WERROR)

deps:
	@scripts/deps

unit: build
	meson test -C $(BUILD) --print-errorlogs

integration: build
	$(PYTEST) -q tests/integration

test: deps
	$(MAKE) build
	$(MAKE) unit
	$(MAKE) integration

# The same code must stay warning-free under clang.
clang:
	CC=clang meson setup build-clang -Dwerror=true >/dev/null || true
	ninja -C build-clang

demo: deps
	$(MAKE) build
	@tests/sandbox up $(DEMO) && tests/sandbox howto $(DEMO)

demo-down:
	@tests/sandbox down $(DEMO)

bench: build
	bench/tcp/run
	bench/policy/run
	bench/audit/run
	bench/pg/run

clean:
	rm -rf $(BUILD) build-clang build-asan
