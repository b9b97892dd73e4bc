#!/bin/sh
# Style and static checks: clang-format, cppcheck, banned functions.
set -u
cd "$(dirname "$0")/.."
fail=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find src tests bench -name '*.[ch]')

echo "lint: clang-format"
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files 2>/tmp/mg-format.$$; then
	head -n 40 /tmp/mg-format.$$
	echo "lint: run 'make format' to fix formatting"
	fail=1
fi
rm -f /tmp/mg-format.$$

echo "lint: banned functions"
# Unbounded or error-blind functions: use snprintf, mg_buf, mg_parse_i64.
if grep -nE '(^|[^_a-zA-Z0-9.>])(strcpy|strcat|sprintf|vsprintf|atoi|atol|atoll|gets)\(' \
	$files | grep -v 'lint: allow'; then
	echo "lint: banned function used (strcpy/strcat/sprintf/vsprintf/atoi/atol/gets)"
	fail=1
fi

echo "lint: cppcheck"
inc=$(pkg-config --cflags-only-I jansson hiredis 2>/dev/null)
# shellcheck disable=SC2086
if ! cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	--inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Isrc -Ibuild/gen \
	--suppress=unknownMacro src tests/unit tests/toml 2>&1; then
	echo "lint: cppcheck found problems"
	fail=1
fi

[ $fail = 0 ] && echo "lint: ok"
exit $fail
