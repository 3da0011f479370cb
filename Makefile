# debseal — see README.md. Every target works from a clean clone.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# The binary never renders its own man page (scripts/mkman does).
TAGS     := urfave_cli_no_docs
BIN      := bin/debseal
# Debian version of make deb: grows with every commit.
DEB_VERSION ?= 0.1.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)
# Fuzz time per target: none locally by default (the seed corpora still run
# as unit tests), a bounded run under CI, long runs with make fuzz.
FUZZTIME ?= $(if $(filter true,$(CI)),10s,)

export CGO_ENABLED := 0

.PHONY: all build test vmtest lint demo bench fuzz deb clean

all: build

build:
	$(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/debseal

# Everything: unit, root, filesystem matrix, end-to-end. As root it first
# installs the Debian packages the suite needs (scripts/deps.txt); otherwise
# it says which are missing. Under CI=true a skipped test fails the run.
test: build
	scripts/deps.sh test
	DEBSEAL_BIN=$(abspath $(BIN)) FUZZTIME=$(FUZZTIME) scripts/test.sh

# The VM suite alone (vmtest/, also part of make test): debseal on a
# booted Debian guest under qemu.
vmtest: build
	scripts/deps.sh test
	DEBSEAL_BIN=$(abspath $(BIN)) scripts/test.sh ./vmtest

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) mod tidy -diff

demo: build
	scripts/demo.sh $(abspath $(BIN))

bench: build
	scripts/deps.sh bench
	scripts/bench.sh $(abspath $(BIN))

fuzz:
	FUZZTIME=$${FUZZTIME:-5m} FUZZMINIMIZE=$${FUZZMINIMIZE:-30s} scripts/fuzz.sh

# debseal_<version>_<arch>.deb in dist/, from the static binary stamped with
# the same version (debseal --version and dpkg -l agree).
deb:
	$(MAKE) build VERSION=$(DEB_VERSION)
	scripts/mkdeb.sh $(BIN) $(DEB_VERSION) dist

clean:
	rm -rf bin
