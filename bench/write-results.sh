#!/usr/bin/env bash
# Writes bench/RESULTS.md from bench/results/: a header with this machine and today's date, the
# introduction (intro.about.md), then for each section its prose (SECTION.about.md) and the
# figures bench/record.sh recorded (SECTION.md, with their own date, commit and machine), then
# the fault scenarios (faults.about.md, the table from faults.rows stamped by faults.stamp) and
# what is not measured yet (not-measured.about.md). `make bench` and `make chaos` run it; it
# runs nothing else, so it takes a second and can be rerun after editing the prose.
#   bench/write-results.sh                  writes bench/RESULTS.md
#   bench/write-results.sh --stamp COMMAND  prints the stamp line for figures COMMAND is about to
#                                           record (date, commit, command, machine)
#   bench/write-results.sh --check-rows FILE
#                                           checks FILE holds fault table rows (see below)
# In an about file, a line `<!-- figures -->` marks where the figures go; without it they
# follow the prose. A section whose figures were never recorded says so instead. Sections
# recorded or described in bench/results/ but missing from the list below come last.
# faults.rows: one markdown table row per scenario, 4 cells:
#   | scenario | missing / duplicated segments | content lost | longest viewer stall or publishing pause |
# appended by the fault tests to the file named by FAULT_RESULTS (scripts/chaos.sh sets it).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
results="$root/bench/results"
# The benchmark sections, in the order they appear.
sections=(catalogue notification transcode edge ingest latency viewers glass-to-glass ll-reload)
# Not benchmark sections: placed by hand below.
special=(intro faults not-measured)

nginx_bin() { command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }

# The machine's facts, one per line: name<TAB>value.
machine_facts() {
  local cpu memory debian codename ffmpeg_version nginx_version nginx
  cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
  [ -n "$cpu" ] || cpu=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
  memory=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  debian="none (not Debian)"
  if [ -f /etc/debian_version ]; then
    debian=$(cat /etc/debian_version)
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    [ -z "$codename" ] || debian="$debian ($codename)"
  fi
  ffmpeg_version="not installed"
  if command -v ffmpeg >/dev/null; then
    ffmpeg_version=$(ffmpeg -hide_banner -version 2>/dev/null | awk 'NR == 1 { print $3 }')
  fi
  nginx_version="not installed"
  nginx=$(nginx_bin)
  if [ -n "$nginx" ]; then
    nginx_version=$("$nginx" -v 2>&1 | sed -n 's#.*nginx/##p')
  fi
  printf 'CPU\t%s\n' "${cpu:-unknown}"
  printf 'cores\t%s\n' "$(nproc)"
  printf 'memory\t%s\n' "$memory"
  printf 'kernel\t%s\n' "$(uname -sr)"
  printf 'Debian\t%s\n' "$debian"
  printf 'FFmpeg\t%s\n' "$ffmpeg_version"
  printf 'nginx\t%s\n' "$nginx_version"
}

# "AMD EPYC, 2 cores, 23.5 GiB, Linux 6.1.0, Debian 12.11 (bookworm), FFmpeg 5.1.6, nginx 1.22.1"
machine_line() {
  machine_facts | awk -F '\t' '
    $1 == "CPU" || $1 == "memory" || $1 == "kernel" { part = $2 }
    $1 == "cores" { part = $2 " cores" }
    $1 == "Debian" || $1 == "FFmpeg" || $1 == "nginx" { part = $1 " " $2 }
    { line = line (NR > 1 ? ", " : "") part }
    END { print line }'
}

# The commit HEAD is at, noting uncommitted changes other than the recorded results themselves.
# Read-only: no index refresh, nothing written to .git.
commit_line() {
  local commit
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) || { echo "unknown"; return; }
  if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$root" status --porcelain --untracked-files=no \
      -- . ':!bench/results' ':!bench/RESULTS.md' 2>/dev/null)" ]; then
    commit="$commit (with uncommitted changes)"
  fi
  echo "$commit"
}

stamp() {
  echo "_Recorded $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(commit_line): \`$1\`, on $(machine_line)._"
}

# Fault rows: each non-blank line a row of exactly 4 cells (`\|` inside a cell is not a border).
check_rows() {
  awk -v file="$1" '
    /^[[:space:]]*$/ { next }
    {
      line = $0; sub(/[[:space:]]+$/, "", line)
      cells = line; gsub(/\\\|/, "", cells)
      borders = gsub(/\|/, "", cells)
      if (line !~ /^\|/ || line !~ /\|$/ || borders != 5) {
        printf "%s:%d: not a 4-cell table row: %s\n", file, NR, $0 > "/dev/stderr"; bad = 1
      }
    }
    END { exit bad }' "$1"
}

# The prose of a section with its figures (read on standard input) where the marker is, or after.
# A fragment's first line, when an HTML comment, is its "do not edit" note: left out here.
prose_and_figures() { # about-file
  local about=$1 figures
  figures=$(sed '1{/^<!--.*-->$/d}')
  if [ -f "$about" ] && grep -qx '<!-- figures -->' "$about"; then
    FIGURES=$figures awk '$0 == "<!-- figures -->" { print ENVIRON["FIGURES"]; next } { print }' "$about"
  else
    [ ! -f "$about" ] || { cat "$about"; echo; }
    printf '%s\n' "$figures"
  fi
}

section() { # name
  local name=$1 about="$results/$1.about.md" fragment="$results/$1.md"
  echo
  [ -f "$about" ] || echo "## \`$name\`"$'\n'
  if [ -f "$fragment" ]; then
    prose_and_figures "$about" <"$fragment"
  else
    echo "_No figures recorded yet: \`make bench\` records them._" | prose_and_figures "$about"
  fi
}

faults() {
  local rows="$results/faults.rows"
  echo
  {
    if [ -s "$rows" ]; then
      if [ -f "$results/faults.stamp" ]; then cat "$results/faults.stamp"; echo; fi
      echo "| scenario | missing / duplicated segments | content lost | longest viewer stall or publishing pause |"
      echo "|---|---|---|---|"
      grep -v '^[[:space:]]*$' "$rows"
    else
      echo "_No fault figures recorded yet: \`make chaos\` records them._"
    fi
  } | prose_and_figures "$results/faults.about.md"
}

header() {
  echo "# Benchmark results"
  echo
  echo "<!-- Generated by bench/write-results.sh from bench/results/: do not edit. The prose is in"
  echo "     bench/results/*.about.md; the figures come from make bench and make chaos. -->"
  echo
  echo "Generated on $(date -u +%Y-%m-%d) by \`bench/write-results.sh\`, which \`make bench\` and"
  echo "\`make chaos\` run after recording. Each section's figures say when, at which commit and on"
  echo "which machine they were recorded. This file was generated on:"
  echo
  echo "| machine | |"
  echo "|---|---|"
  machine_facts | awk -F '\t' '{ printf "| %s | %s |\n", $1, $2 }'
}

write_results() {
  local name known listed out="$root/bench/RESULTS.md"
  draft="$root/bench/.RESULTS.md.part"  # global: the EXIT trap removes it
  if [ -f "$results/faults.rows" ] && ! check_rows "$results/faults.rows"; then
    echo "write-results: bench/results/faults.rows is malformed; bench/RESULTS.md not written" >&2
    exit 1
  fi
  # Sections with files here but missing from the list: last, in name order.
  local extra=()
  local names=()
  mapfile -t names < <(find "$results" -maxdepth 1 -name '*.md' -printf '%f\n' | sed 's/\.about\.md$//; s/\.md$//' | sort -u)
  for name in "${names[@]}"; do
    listed=no
    for known in "${sections[@]}" "${special[@]}"; do [ "$name" != "$known" ] || listed=yes; done
    if [ "$listed" = no ]; then
      echo "write-results: bench/results/$name.* is not in the section list; placed last" >&2
      extra+=("$name")
    fi
  done
  trap 'rm -f "$draft"' EXIT
  {
    header
    if [ -f "$results/intro.about.md" ]; then echo; cat "$results/intro.about.md"; fi
    for name in "${sections[@]}" "${extra[@]}"; do section "$name"; done
    faults
    if [ -f "$results/not-measured.about.md" ]; then echo; cat "$results/not-measured.about.md"; fi
  } >"$draft"
  mv "$draft" "$out"
  echo "write-results: bench/RESULTS.md written"
}

case "${1:-}" in
  "") write_results ;;
  --machine) machine_line ;;
  --stamp) [ "$#" -eq 2 ] || { echo "usage: bench/write-results.sh --stamp COMMAND" >&2; exit 2; }; stamp "$2" ;;
  --check-rows) [ "$#" -eq 2 ] || { echo "usage: bench/write-results.sh --check-rows FILE" >&2; exit 2; }; check_rows "$2" ;;
  *) echo "usage: bench/write-results.sh [--machine | --stamp COMMAND | --check-rows FILE]" >&2; exit 2 ;;
esac
