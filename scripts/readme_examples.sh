#!/usr/bin/env bash
# Runs the shell examples of the README and of docs/ as written, so that
# they stay true.
#
# Every ```sh block of README.md, then of docs/*.md by name (not docs/cli,
# which is generated), is read in order; a line ending in \ joins
# the next. A block with a "..." placeholder (credentials, a bucket, a job
# server, a cloud project) is a template and is listed as skipped, and so is
# the line that runs scripts/test.sh (the test suite runs this script). Every
# other line runs with bash -e in one copy of the working tree (the files git
# tracks, with their uncommitted changes), in order, from its root: the first
# failing line fails the script, with the line and its output.
#
# Usage: scripts/readme_examples.sh [FILE.md...] (default: README.md docs/*.md)
# Ends with "README examples: N ran, N skipped" and exits non-zero on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -gt 0 ]; then
  docs=("$@")
else
  docs=("$root/README.md" "$root"/docs/*.md)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy=$work/veil
mkdir -p "$copy"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy" 2>/dev/null) ||
  { echo "readme_examples: copying the working tree failed" >&2; exit 1; }

# blocks prints one record per block: its line in the file, a tab, and its
# lines joined by \x1f (continuations already joined).
blocks() {
  awk '
    /^```sh[[:space:]]*$/ { inb = 1; start = NR; body = ""; prev = ""; next }
    /^```/ && inb {
      if (prev != "") body = body (body == "" ? "" : "\x1f") prev
      print start "\t" body; inb = 0; next
    }
    inb {
      line = $0
      if (prev != "") { sub(/^[[:space:]]+/, "", line); line = prev " " line; prev = "" }
      if (line ~ /\\$/) { sub(/\\$/, "", line); prev = line; next }
      body = body (body == "" ? "" : "\x1f") line
    }
  ' "$1"
}

ran=0
skipped=0
for doc in "${docs[@]}"; do
  name=${doc#"$root"/}
  while IFS=$'\t' read -r at body; do
    IFS=$'\x1f' read -r -a lines <<<"$body"
    if grep -q '\.\.\.' <<<"$body"; then
      echo "$name:$at: skipped (a template: it has ... placeholders)"
      skipped=$((skipped + ${#lines[@]}))
      continue
    fi
    for line in "${lines[@]}"; do
      cmd=${line%%#*}
      cmd=$(sed -e 's/[[:space:]]*$//' <<<"$cmd")
      if [ -z "$cmd" ]; then
        continue
      fi
      if [[ $cmd == *scripts/test.sh* ]]; then
        echo "$name:$at: skipped: $cmd (the test suite itself)"
        skipped=$((skipped + 1))
        continue
      fi
      echo "$name:$at: $cmd"
      if ! out=$(cd "$copy" && bash -euo pipefail -c "$cmd" 2>&1); then
        echo "$out" | tail -20
        echo "$name:$at: this example fails as written: $cmd" >&2
        echo "README examples: $ran ran, 1 failed, $skipped skipped"
        exit 1
      fi
      ran=$((ran + 1))
    done
  done < <(blocks "$doc")
done

if [ "$ran" -eq 0 ]; then
  echo "readme_examples: no runnable example found in ${docs[*]}" >&2
  exit 1
fi
echo "README examples: $ran ran, $skipped skipped"
