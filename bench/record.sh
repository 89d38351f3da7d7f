#!/usr/bin/env bash
# Runs one benchmark and records the figures it printed into bench/results/SECTION.md, which
# bench/write-results.sh puts into bench/RESULTS.md under that section's prose
# (bench/results/SECTION.about.md).
#   bench/record.sh SECTION -- COMMAND [ARG...]
# The benchmark's output is shown live as it runs. What is recorded, from its standard output
# only (its standard error, where builds, package installs, ffmpeg and server logs go, is shown
# but never recorded):
#   - its markdown tables (lines starting with `|`), kept as tables;
#   - its summary lines: every other line that carries a figure (a digit), kept verbatim in a
#     text block, in the order printed;
#   - its `#` headings (labels of what follows), kept as bold labels;
#   - not: blank lines, lines without a digit (banners, progress), command echoes (`+ ...`) and
#     standard error relayed by a script (`  stderr: ...`).
# The fragment is stamped with the date, the git commit (noting uncommitted changes outside the
# recorded results), the command and the machine. It is replaced only when the benchmark exits 0
# and printed at least one figure: a failed run leaves the last good fragment as it was and this
# script exits non-zero (the benchmark's own status when it failed).
set -euo pipefail

usage() { echo "usage: bench/record.sh SECTION -- COMMAND [ARG...]" >&2; exit 2; }
if [ "$#" -lt 3 ] || [ "$2" != "--" ]; then usage; fi
section=$1
shift 2
[[ "$section" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "record: section name '$section': lowercase letters, digits and '-' only" >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
results="$root/bench/results"
fragment="$results/$section.md"
mkdir -p "$results"

raw=$(mktemp)
draft="$results/.$section.md.part"
trap 'rm -f "$raw" "$draft"' EXIT

command_line=$(printf '%q ' "$@")
command_line=${command_line% }
# Stamped before the run: the date it started, the tree it ran from.
stamp=$("$root/bench/write-results.sh" --stamp "$command_line")

echo "record: $section: $command_line"
set +e
"$@" | tee "$raw"
statuses=("${PIPESTATUS[@]}")
set -e
status=${statuses[0]}
if [ "$status" -eq 0 ] && [ "${statuses[1]}" -ne 0 ]; then status=${statuses[1]}; fi
if [ "$status" -ne 0 ]; then
  echo "record: $section FAILED (exit status $status); bench/results/$section.md left as it was" >&2
  exit "$status"
fi

{
  echo "<!-- Written by bench/record.sh (make bench); bench/write-results.sh copies it into bench/RESULTS.md. Rerun, do not edit. -->"
  echo "$stamp"
  # Tables stay tables; runs of the other kept lines go into one text block each.
  sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r$//' "$raw" | awk '
    function close_text() { if (in_text) { print "```"; in_text = 0 } }
    /^[[:space:]]*$/ { in_table = 0; next }  # a blank line ends a table
    /^\+ / || /^  stderr: / { next }
    /^\|/ {
      close_text()
      if (!in_table) { print ""; in_table = 1 }
      print; figures++; next
    }
    /^#+ / {  # a heading the benchmark printed: a bold label, not a heading of RESULTS.md
      close_text(); in_table = 0
      sub(/^#+ +/, ""); gsub(/\*/, "\\*")
      print ""; print "**" $0 "**"; next
    }
    /[0-9]/ {
      in_table = 0
      if (!in_text) { print ""; print "```text"; in_text = 1 }
      print; figures++; next
    }
    END { close_text(); if (!figures) exit 1 }
  '
} >"$draft" || {
  echo "record: $section printed no figures on its standard output; bench/results/$section.md left as it was" >&2
  exit 1
}
mv "$draft" "$fragment"
echo "record: $section figures saved to bench/results/$section.md"
