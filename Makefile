# smarthost — build, run and test. Every target installs what it needs first (idempotent),
# and only that: building and running need two -dev libraries, never the test tools.
SWIFT       ?= swift
CONFIG      ?= config/smarthost.yaml
VERSION     := 0.2.0
COMMIT      := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
RELEASE_BIN := .build/release/smarthost
# The Swift runtime and Foundation linked in: the binary runs on a Debian host without a
# Swift toolchain; its only shared libraries are Debian's (libssl3, libsystemd0, libc …).
RELEASE_FLAGS := -c release --static-swift-stdlib \
	-Xcc -DSMARTHOST_VERSION='"$(VERSION)"' -Xcc -DSMARTHOST_COMMIT='"$(COMMIT)"'

BUILD_PKGS  := libssl-dev libsystemd-dev pkg-config libcurl4-openssl-dev libyaml-dev
# Postfix is only wanted for its smtp-source/smtp-sink tools: preseeded "No configuration",
# so installing it never sets up or starts a system mail server.
TEST_PKGS   := openssl swaks postfix python3-aiosmtpd curl systemd procps prometheus \
               bsd-mailx php-cli git-email libmailtools-perl cron \
               python3-jwt python3-cryptography tinyproxy acl
PACKAGE_PKGS := dpkg-dev
SYSTEM_TEST_PKGS := debootstrap util-linux

.PHONY: deps test-deps build release run test bench demo stress clean man deb test-system

# apt-get install, only what is missing; root or sudo.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_PKGS))

test-deps: deps
	$(call apt_install,$(TEST_PKGS))

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build $(RELEASE_FLAGS)

# The developer relay: config/smarthost.yaml on 127.0.0.1:2525, spool under ./var/.
# The default route's API key comes from the environment; a placeholder lets it start.
run: release
	mkdir -p var
	SENDGRID_API_KEY="$${SENDGRID_API_KEY:-placeholder-not-a-key}" \
	ACME_SMTP_PASSWORD="$${ACME_SMTP_PASSWORD:-placeholder-not-a-password}" \
	$(RELEASE_BIN) serve --config $(CONFIG)

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build .build-deb var

# Accept and end-to-end rate against a private Debian Postfix, same machine, same run; then
# configuration at scale (10 / 1 000 / 10 000 orgs: check-config, reload, RSS, classification);
# then the same STARTTLS route with a password and with OAuth2 (msg/s, token fetches).
bench: release test-deps
	Tests/Bench/bench.sh
	Tests/Bench/orgs.sh
	Tests/Bench/oauth2.sh

# The settings model in under a minute: three local TLS+AUTH upstreams, one message per case.
demo: release test-deps
	config/demo/demo.sh

# smarthost(8) from the command line's own help (swift-argument-parser's manual generator),
# smarthost.yaml(5) written by hand.
MAN_DIR := .build/man
man: release
	$(SWIFT) build --product generate-manual
	mkdir -p $(MAN_DIR)
	.build/debug/generate-manual $(RELEASE_BIN) --section 8 --date $$(git log -1 --format=%cs 2>/dev/null || date +%F) \
		--authors "smarthost developers" -o $(MAN_DIR)
	cp deploy/man/smarthost.yaml.5 $(MAN_DIR)/smarthost.yaml.5

# A Debian package built with dpkg-deb (units, sysusers/tmpfiles, the config as a conffile,
# man pages); postinst creates the account and enables nothing.  → .build-deb/smarthost_*.deb
deb: man
	$(call apt_install,$(PACKAGE_PKGS))
	deploy/deb/build.sh $(VERSION) $(RELEASE_BIN) $(MAN_DIR)

# The package installed in a real systemd (../shared/tools/systemd-box, Debian 12, no Swift
# toolchain inside), exactly as the README tells an operator; see Tests/System/run.sh.
test-system: deb
	$(call apt_install,$(SYSTEM_TEST_PKGS))
	Tests/System/run.sh .build-deb/smarthost_$(VERSION)_$$(dpkg --print-architecture).deb

# Installs the relay for systemd: binary (stripped), units, sysusers.d/tmpfiles.d snippets,
# man pages, an example config (never overwriting /etc/smarthost/smarthost.yaml) and the README.
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
MANDIR     ?= $(PREFIX)/share/man

.PHONY: install
install:
	@test -x $(BIN) || $(MAKE) release
	@test -f $(MAN_DIR)/smarthost.8 || $(MAKE) man
	install -D -m 0755 -s $(BIN) $(DESTDIR)$(PREFIX)/bin/smarthost
	install -d -m 0755 $(DESTDIR)$(PREFIX)/sbin
	ln -sf ../bin/smarthost $(DESTDIR)$(PREFIX)/sbin/sendmail
	ln -sf smarthost $(DESTDIR)$(PREFIX)/bin/mailq
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for unit in smarthost.service smarthost.socket; do \
		sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' -e 's|/usr/local/share/doc/|$(PREFIX)/share/doc/|g' \
		    -e 's|/etc/smarthost|$(SYSCONFDIR)/smarthost|g' deploy/$$unit > $(DESTDIR)$(UNITDIR)/$$unit && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -D -m 0644 deploy/smarthost.sysusers $(DESTDIR)$(SYSUSERSDIR)/smarthost.conf
	install -d -m 0755 $(DESTDIR)$(TMPFILESDIR)
	sed -e 's|/etc/smarthost|$(SYSCONFDIR)/smarthost|g' deploy/smarthost.tmpfiles > $(DESTDIR)$(TMPFILESDIR)/smarthost.conf
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/smarthost.conf
	install -D -m 0644 $(MAN_DIR)/smarthost.8 $(DESTDIR)$(MANDIR)/man8/smarthost.8
	install -D -m 0644 $(MAN_DIR)/smarthost.yaml.5 $(DESTDIR)$(MANDIR)/man5/smarthost.yaml.5
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/smarthost
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/smarthost/credentials
	install -m 0640 deploy/smarthost.yaml.example $(DESTDIR)$(SYSCONFDIR)/smarthost/smarthost.yaml.example
	test -e $(DESTDIR)$(SYSCONFDIR)/smarthost/smarthost.yaml || \
		install -m 0640 deploy/smarthost.yaml.example $(DESTDIR)$(SYSCONFDIR)/smarthost/smarthost.yaml
	@if [ -f README.md ]; then install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md; fi
	@echo "installed; next: systemd-sysusers smarthost.conf && systemd-tmpfiles --create smarthost.conf" \
	     "&& systemctl daemon-reload && systemctl enable --now smarthost.socket smarthost.service"

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
test-asan: test-deps
	$(SWIFT) build --build-tests -Xswiftc -sanitize=address --scratch-path $(ASAN_SCRATCH)
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build --scratch-path $(ASAN_SCRATCH) \
		$(if $(ASAN_SKIP),--skip '$(ASAN_SKIP)')

# libFuzzer targets (command, data, session, reply), FUZZ_SECONDS each; see Tests/Fuzz/run.sh.
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) Tests/Fuzz/run.sh

# Crash (SIGKILL x20), abuse and a bounded fuzz run against the release binary; prints a table.
stress: release test-deps
	SMARTHOST_BIN=$(RELEASE_BIN) Tests/Stress/stress.sh
