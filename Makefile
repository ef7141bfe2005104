# domb — the README's two commands are `make demo` and `make test`.
.PHONY: demo test build deps clean e2e e2e-boot fuzz fuzz-smoke keylime install docs
# `make install [PREFIX=/usr/local] [DESTDIR=]`: domb, one manual page per command and the
# bash, zsh and fish completions, generated from the argument parser (scripts/install.sh).
PREFIX ?= /usr/local
DESTDIR ?=
demo:
	./scripts/demo.sh
test:
	./scripts/test.sh
build: deps
	swift build -Xswiftc -warnings-as-errors
deps:
	./scripts/install-deps.sh
clean:
	rm -rf .build
e2e:  # real Xen 4.17 under QEMU with domb in dom0 (docs/e2e.md)
	./scripts/install-deps.sh --e2e
	./scripts/e2e/run.sh $(E2E_ARGS)
# libFuzzer targets (FuzzTesting/, docs/fuzzing.md): fuzz-smoke runs each for 20 s (CI),
# fuzz for FUZZ_SECONDS (default 300) each.
fuzz-smoke:
	./scripts/fuzz.sh 20
fuzz:
	./scripts/fuzz.sh $${FUZZ_SECONDS:-300}
e2e-boot:  # domb boot --backend libxl in dom0 of real Xen, the TPM a host swtpm (docs/e2e.md)
	./scripts/install-deps.sh --e2e
	./scripts/e2e/boot-scenario.sh $(E2E_ARGS)
keylime:  # a domb host attested by an unmodified Keylime 7.14.3 from PyPI (docs/keylime.md)
	./scripts/install-deps.sh --keylime
	./scripts/keylime/scenario.sh $(KEYLIME_ARGS)
install:
	./scripts/install.sh "$(PREFIX)" "$(DESTDIR)"
# The README's picture of examples/demo/launch.dts (docs/demo-topology.{dot,svg}), drawn by
# `domb config show --svg` through Graphviz's dot; a test checks the committed one is current.
docs:
	swift build -Xswiftc -warnings-as-errors --product domb
	./scripts/docs.sh
