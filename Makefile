# domb — the README's two commands are `make demo` and `make test`.
.PHONY: demo test build deps clean
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
