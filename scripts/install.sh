#!/bin/bash
# `make install`: domb, its manual pages and its shell completions, all generated from the
# argument parser (swift-argument-parser): the pages by its generate-manual plugin (one page
# per command: domb.1, domb.bundle.verify.1, …), the completions by
# `domb --generate-completion-script bash|zsh|fish`.
#
#   scripts/install.sh [PREFIX [DESTDIR]]     # defaults: /usr/local, nothing
#
# Installs under $DESTDIR$PREFIX: bin/domb, share/man/man1/*.1,
# share/bash-completion/completions/domb, share/zsh/site-functions/_domb,
# share/fish/vendor_completions.d/domb.fish. The pages carry the date of the last commit
# (or $SOURCE_DATE_EPOCH), so the same tree installs the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${1:-/usr/local}
DESTDIR=${2:-}
CONFIGURATION=${CONFIGURATION:-release}

if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
    date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)
else
    date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
fi

# The manual: the plugin builds the package in $CONFIGURATION and writes the pages of every
# executable product into its work directory.
swift package --disable-sandbox plugin generate-manual --configuration "$CONFIGURATION" \
    --multi-page --date "$date" --section 1 >/dev/null
page=$(find .build/plugins -path '*GenerateManual*' -name domb.1 -newer Package.swift | head -1)
[[ -n "$page" ]] || { echo "install: the generate-manual plugin wrote no domb.1" >&2; exit 1; }
pages=$(dirname "$page")
# generate-manual copies a discussion's blank lines (paragraph breaks in --help) into the
# page as they are; mdoc wants .Pp there (man --warnings: "Empty input line").
sed -i 's/^$/.Pp/' "$pages"/*.1
domb=$(swift build -c "$CONFIGURATION" --show-bin-path)/domb

root="$DESTDIR$PREFIX"
install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
    "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
install -m 0755 "$domb" "$root/bin/domb"
install -m 0644 "$pages"/*.1 "$root/share/man/man1/"
"$domb" --generate-completion-script bash > "$root/share/bash-completion/completions/domb"
"$domb" --generate-completion-script zsh > "$root/share/zsh/site-functions/_domb"
"$domb" --generate-completion-script fish > "$root/share/fish/vendor_completions.d/domb.fish"
chmod 0644 "$root/share/bash-completion/completions/domb" "$root/share/zsh/site-functions/_domb" \
    "$root/share/fish/vendor_completions.d/domb.fish"
echo "installed domb, $(ls "$pages"/*.1 | wc -l) manual pages and bash, zsh and fish completions under $root"
