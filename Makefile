# smarthost — build, run and test. Every target installs what it needs first.
SWIFT      ?= swift
CONFIG     ?= config/smarthost.yaml
BIN        := .build/debug/smarthost
RELEASE_BIN:= .build/release/smarthost
APT_PKGS   := libssl-dev libsystemd-dev pkg-config openssl swaks postfix python3-aiosmtpd curl systemd

.PHONY: deps build release run test bench stress clean

# Idempotent: apt-get runs only when a package is missing.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	mkdir -p var/spool
	$(RELEASE_BIN) serve --config $(CONFIG)

test: deps
	$(SWIFT) build
	$(SWIFT) test

clean:
	rm -rf .build var
