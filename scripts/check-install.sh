#!/bin/bash
# Checks `make install` (part of `make test`): into a scratch DESTDIR with PREFIX=/usr, the
# binary runs, there is a manual page for every command that man renders without a warning
# and that documents the command's options and exit status, and the installed bash
# completion, loaded into bash, completes a subcommand.
#
#   scripts/check-install.sh        # CONFIGURATION=debug reuses the test build
set -euo pipefail
cd "$(dirname "$0")/.."
export CONFIGURATION=${CONFIGURATION:-debug}
for tool in man bash python3; do
    command -v "$tool" >/dev/null || { echo "check-install: $tool is missing (apt-get install man-db bash python3)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/domb-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
make -s install PREFIX=/usr DESTDIR="$work" >/dev/null
root="$work/usr"
fail() { echo "check-install: FAIL: $*" >&2; exit 1; }

"$root/bin/domb" --version >/dev/null || fail "the installed domb does not run"

# One page per command, named as generate-manual names them (domb.bundle.verify.1).
commands=$("$root/bin/domb" --experimental-dump-help | python3 -c '
import json, sys
def walk(command, path):
    path = path + [command["commandName"]]
    yield ".".join(path)
    for sub in command.get("subcommands", []):
        if sub["commandName"] != "help":
            yield from walk(sub, path)
print("\n".join(walk(json.load(sys.stdin)["command"], [])))')
count=0
for command in $commands; do
    page="$root/share/man/man1/$command.1"
    [[ -f "$page" ]] || fail "no manual page $command.1"
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
    [[ -z "$warnings" ]] || fail "man warns on $command.1: $warnings"
    count=$((count + 1))
done
text=$(MANWIDTH=200 man -l "$root/share/man/man1/domb.bundle.verify.1" 2>/dev/null)
for phrase in "--no-progress" "--pubkey" "Exit status: 0 the bundle verifies"; do
    grep -qF -- "$phrase" <<<"$text" || fail "domb.bundle.verify.1 does not mention $phrase"
done

# The installed bash completion, loaded as bash-completion would load it.
completion="$root/share/bash-completion/completions/domb"
reply=$(bash -c '
    source "$1"
    COMP_WORDS=(domb bundle ver); COMP_CWORD=2; COMP_LINE="domb bundle ver"; COMP_POINT=${#COMP_LINE}
    _domb domb ver bundle
    printf "%s\n" "${COMPREPLY[@]}"' check "$completion")
[[ "$reply" == verify ]] || fail "bash completes 'domb bundle ver' to '$reply', not 'verify'"
grep -q "bundle" "$root/share/zsh/site-functions/_domb" || fail "zsh completion lacks the bundle command"
grep -q "bundle" "$root/share/fish/vendor_completions.d/domb.fish" || fail "fish completion lacks the bundle command"
echo "check-install: domb, $count manual pages (no man warnings), bash, zsh and fish completions: OK"
