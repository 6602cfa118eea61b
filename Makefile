# The two commands a new user needs: `make serve` and `make test`. Everything else is a step of them.
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
RELEASE_DIR := build/release
ASAN_DIR := build/asan
FUZZ_DIR := build/fuzz
TSAN_DIR := build/tsan
FUZZ_SECONDS ?= 60
PREFIX ?= /usr/local
ARGS ?= --root www --diag

.PHONY: all deps build build-asan build-tsan build-fuzz fuzz fuzz-smoke serve test test-release test-asan test-tsan format clean install deb test-deb

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(RELEASE_DIR) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DUNBROKEN_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)

# The binary, its man page, the headers, the static libraries and the CMake package (find_package(unbroken)).
# Staged for a packager with `make install PREFIX=/usr DESTDIR=/tmp/stage`.
install: build
	@DESTDIR="$(DESTDIR)" cmake --install $(RELEASE_DIR) --prefix $(PREFIX)

# The Debian package (packaging/deb/build-deb): build/release/unbroken_VERSION-1_ARCH.deb.
deb: build
	@cmake --build $(RELEASE_DIR) --target deb

# Installs the package with dpkg, serves a page as the unbroken user, removes and purges it. Root only.
test-deb: deb
	tests/install/deb_test.sh $(RELEASE_DIR)

# Serves ./www on 127.0.0.1:8080 (admin on 127.0.0.1:9090) with the diagnostic routes. HTTPS too:
# make serve ARGS='--root www --diag --tls-self-signed --tls-listen 127.0.0.1:8443'
serve: build
	$(RELEASE_DIR)/unbroken serve $(ARGS)

test-release: build
	cd $(RELEASE_DIR) && ctest --output-on-failure -j $(JOBS)

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: build-asan
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

# The integration suite under ThreadSanitizer: several loops and the worker pool busy in the server
# processes it starts. A report anywhere (a test or a server) stops that process and fails the run.
build-tsan: deps
	@cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNBROKEN_TSAN=ON >/dev/null
	@cmake --build $(TSAN_DIR) -j $(JOBS) --target unbroken integration_tests

test-tsan: build-tsan
	@rm -rf $(TSAN_DIR)/reports && mkdir -p $(TSAN_DIR)/reports
	cd $(TSAN_DIR) && TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:log_path=$(CURDIR)/$(TSAN_DIR)/reports/tsan \
		ctest --output-on-failure -j $(JOBS) -L integration
	@if ls $(TSAN_DIR)/reports/tsan* >/dev/null 2>&1; then cat $(TSAN_DIR)/reports/tsan*; exit 1; fi

# libFuzzer targets (clang, ASan+UBSan): the request and response parsers, a whole connection in memory, the
# config loader, the analyze input formats. fuzz-smoke runs each for 60 s; `make fuzz FUZZ_SECONDS=3600` for longer.
build-fuzz: deps
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DUNBROKEN_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_request_parser fuzz_response_parser fuzz_http_connection fuzz_serve_config fuzz_analyze_formats

fuzz-smoke: build-fuzz
	@scripts/fuzz 60

fuzz: build-fuzz
	@scripts/fuzz $(FUZZ_SECONDS)

# The package test where dpkg-deb exists (Debian): it installs into this machine, so it is not in ctest.
DEB_TEST := $(if $(shell command -v dpkg-deb 2>/dev/null),test-deb)
test: test-release $(DEB_TEST) test-asan test-tsan fuzz-smoke

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build
