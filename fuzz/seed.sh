#!/usr/bin/env bash
# Seeds corpus/sanitize with core's adversarial shapes at 4 KB, HTML ones
# behind a 0 byte and Markdown ones behind a 1 (the target's mode byte).
set -euo pipefail
cd "$(dirname "$0")"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run -q --release --manifest-path ../Cargo.toml -p veritable-core --example adversarial -- --dump "$dir" 4000 > /dev/null
mkdir -p corpus/sanitize
for f in "$dir"/*; do
    case $f in *.md) mode='\x01' ;; *) mode='\x00' ;; esac
    { printf "$mode"; cat "$f"; } > "corpus/sanitize/seed-$(basename "$f" | cut -d. -f1)"
done
ls corpus/sanitize | wc -l
