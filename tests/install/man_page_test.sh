#!/usr/bin/env bash
# unbroken(1) cannot drift from --help: every option each `--help` lists (the top level's and every
# subcommand's) must stand in the page the build wrote, and groff must render the page without a
# warning.
#   tests/install/man_page_test.sh UNBROKEN_BINARY MAN_PAGE
set -euo pipefail
bin=$1
page=$2
fail=0

# The first field of each option line of a help text: "  -h,--help   Print ..." gives -h and --help.
options_of() {
  "$bin" "$@" --help | awk '/^  -/ { split($1, names, ","); for (i in names) print names[i] }' |
    sed 's/=.*//'
}
subcommands=$("$bin" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$subcommands" ] || { echo "man_page_test: no subcommands in --help" >&2; exit 1; }

for sub in "" $subcommands; do
  if [ -n "$sub" ] && ! grep -qxF ".SH \"unbroken $sub\"" "$page"; then
    echo "man_page_test: no section for 'unbroken $sub'" >&2
    fail=1
  fi
  count=0
  for opt in $(options_of $sub); do
    count=$((count + 1))
    # The page spells each name in bold with escaped minus signs: \fB\-\-listen\fR.
    roff="\\fB${opt//-/\\-}\\fR"
    grep -qF -- "$roff" "$page" || { echo "man_page_test: ${sub:-unbroken} $opt is not in $page" >&2; fail=1; }
  done
  [ "$count" -gt 0 ] || { echo "man_page_test: ${sub:-unbroken} --help listed no option" >&2; fail=1; }
  echo "man_page_test: ${sub:-(top level)}: $count options, all in the page"
done
grep -q 'help-man' "$page" && { echo "man_page_test: the hidden help-man is in the page" >&2; fail=1; }

if command -v groff >/dev/null; then
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warnings" ] || { echo "man_page_test: groff warns:" >&2; echo "$warnings" >&2; fail=1; }
else
  echo "man_page_test: groff is not installed; the page was not rendered"
fi
exit $fail
