# Example dom0 fragment (docs/e2e.md): a --payload file reaches dom0 and goes back to the host.
#   scripts/e2e/run.sh --payload README.md=example/readme.txt \
#     --fragment scripts/e2e/examples/roundtrip.sh --host-check scripts/e2e/examples/roundtrip-host.sh
e2e_check example-payload sha256sum "$E2E_PAYLOAD/example/readme.txt"
e2e_file example-readme.txt "$E2E_PAYLOAD/example/readme.txt"
