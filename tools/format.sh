#!/usr/bin/env bash
# Formats the project's C and C++ sources with .clang-format, or (--check) fails
# listing the files that are not formatted.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.cpp' '*.hpp' '*.h' '*.c' | while read -r f; do [[ -f "$f" ]] && echo "$f"; done)
if [[ ${1:-} == --check ]]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [[ ${#bad[@]} -gt 0 ]]; then
    echo "format-check: not formatted (run 'make format'): ${bad[*]}" >&2
    exit 1
  fi
  echo "format-check: ${#files[@]} files formatted"
else
  clang-format -i "${files[@]}"
fi
