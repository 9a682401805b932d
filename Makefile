# smarthost — build, run and test. Every target installs what it needs first (idempotent).
SWIFT       ?= swift
CONFIG      ?= config/smarthost.yaml
RELEASE_BIN := .build/release/smarthost
APT_PKGS    := libssl-dev libsystemd-dev pkg-config openssl swaks postfix python3-aiosmtpd curl systemd procps
# oauth2 (issue 11) — build: libcurl for token endpoints; test: JWT checks in the fake token endpoint, a proxy
APT_PKGS    += libcurl4-openssl-dev
APT_PKGS    += python3-jwt python3-cryptography tinyproxy

.PHONY: deps build release run test bench demo stress clean

# Postfix is only wanted for its smtp-source/smtp-sink tools: preseeded "No configuration",
# so installing it never sets up or starts a system mail server.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
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

# Accept and end-to-end rate against a private Debian Postfix, same machine, same run.
bench: release
	Tests/Bench/bench.sh

# The settings model in under a minute: three local TLS+AUTH upstreams, one message per case.
demo: release
	config/demo/demo.sh

# Installs the relay for systemd: binary, units, sysusers.d/tmpfiles.d snippets, an example
# config (never overwriting /etc/smarthost/smarthost.yaml) and the README.
#   make release && sudo make install            (PREFIX=/usr/local)
#   make install DESTDIR=/tmp/stage PREFIX=/usr  (packaging)
# Unit files name $(PREFIX)/bin/smarthost; the config stays in $(SYSCONFDIR)/smarthost.
PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
BIN        ?= $(RELEASE_BIN)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR     ?= $(PREFIX)/share/doc/smarthost

.PHONY: install
install:
	@test -x $(BIN) || $(SWIFT) build -c release
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/smarthost
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for unit in smarthost.service smarthost.socket; do \
		sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' -e 's|/usr/local/share/doc/|$(PREFIX)/share/doc/|g' \
		    -e 's|/etc/smarthost|$(SYSCONFDIR)/smarthost|g' deploy/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -D -m 0644 deploy/smarthost.sysusers $(DESTDIR)$(SYSUSERSDIR)/smarthost.conf
	install -D -m 0644 deploy/smarthost.tmpfiles $(DESTDIR)$(TMPFILESDIR)/smarthost.conf
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/smarthost
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/smarthost/credentials
	install -m 0640 deploy/smarthost.yaml.example $(DESTDIR)$(SYSCONFDIR)/smarthost/smarthost.yaml.example
	test -e $(DESTDIR)$(SYSCONFDIR)/smarthost/smarthost.yaml || \
		install -m 0640 deploy/smarthost.yaml.example $(DESTDIR)$(SYSCONFDIR)/smarthost/smarthost.yaml
	@if [ -f README.md ]; then install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md; fi
	@echo "installed; next: systemctl daemon-reload && systemd-sysusers && systemd-tmpfiles --create smarthost.conf" \
	     "&& systemctl enable --now smarthost.socket smarthost.service"

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
