# smarthost — build, run and test. Every target installs what it needs first (idempotent).
SWIFT       ?= swift
CONFIG      ?= config/smarthost.yaml
RELEASE_BIN := .build/release/smarthost
APT_PKGS    := libssl-dev libsystemd-dev pkg-config openssl swaks postfix python3-aiosmtpd curl systemd procps

.PHONY: deps build release run test bench demo stress clean

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

# Accept and end-to-end rate against a private Debian Postfix, same machine, same run.
bench: release
	Tests/Bench/bench.sh

# The settings model in under a minute: three local TLS+AUTH upstreams, one message per case.
demo: release
	config/demo/demo.sh
