# smarthost — build, run and test. Every target installs what it needs first (idempotent).
SWIFT       ?= swift
CONFIG      ?= config/smarthost.yaml
RELEASE_BIN := .build/release/smarthost
APT_PKGS    := libssl-dev libsystemd-dev pkg-config openssl swaks postfix python3-aiosmtpd curl systemd procps

.PHONY: deps build release run test bench stress clean

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The developer relay: config/smarthost.yaml on 127.0.0.1:2525, spool under ./var/.
# The default route's API key comes from the environment; a placeholder lets it start.
run: release
	mkdir -p var
	SENDGRID_API_KEY="$${SENDGRID_API_KEY:-placeholder-not-a-key}" \
	ACME_SMTP_PASSWORD="$${ACME_SMTP_PASSWORD:-placeholder-not-a-password}" \
	$(RELEASE_BIN) serve --config $(CONFIG)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build var

# --- stress, sanitizer and fuzzing (issue 5); none of these is part of `make test` ---

.PHONY: test-asan fuzz

ASAN_SCRATCH := .build-asan
FUZZ_SECONDS ?= 60

# The unit and end-to-end suites built with AddressSanitizer in their own scratch path.
# End-to-end tests spawn the relay from the same build directory, so they run the ASan
# binary too.
# Leak detection is off: the toolchain's XCTest runner leaks a few objects at exit.
# ASAN_SKIP=REGEX skips tests (swift test --skip), e.g. one known to hit a reported bug.
ASAN_SKIP ?=
test-asan: deps
	$(SWIFT) build --build-tests -Xswiftc -sanitize=address --scratch-path $(ASAN_SCRATCH)
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build --scratch-path $(ASAN_SCRATCH) \
		$(if $(ASAN_SKIP),--skip '$(ASAN_SKIP)')

# libFuzzer targets (command, data, session, reply), FUZZ_SECONDS each; see Tests/Fuzz/run.sh.
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) Tests/Fuzz/run.sh

# Crash (SIGKILL x20), abuse and a bounded fuzz run against the release binary; prints a table.
stress: release
	SMARTHOST_BIN=$(RELEASE_BIN) Tests/Stress/stress.sh
