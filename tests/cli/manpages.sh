#!/bin/sh
# manpages.sh - the manual pages say what the code does
#
# (a) tlspolicy.conf(5) has an entry for every key of the shipped policy
#     and for every key `tlspolicyctl show` prints, and no other;
# (b) its keys are those of doc/design.md's policy example;
# (c) tlspolicyctl(8) names every verb and every long option the CLI's
#     --help texts list;
# (d) both pages format without a groff warning.
# Environment (from make check): top_srcdir, top_builddir, TLSPOLICYCTL.

: "${TLSPOLICYCTL:?run from make check}"
: "${top_srcdir:?run from make check}"
: "${top_builddir:?run from make check}"

. "$TESTS_SRC/cli/lib.sh"

conf5=$top_builddir/doc/tlspolicy.conf.5
man8=$top_srcdir/doc/tlspolicyctl.8
shipped=$top_srcdir/policy/tlspolicy.conf
design=$top_srcdir/doc/design.md

# plain - roff source on stdin, with the escapes that hide plain text removed
plain() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\%//g' -e 's/\\&//g'
}

# in_list WORD FILE - WORD is a line of FILE
in_list() { grep -qxF -- "$1" "$2"; }

# compare WHAT A_NAME A_FILE B_NAME B_FILE - every line of A is in B
compare() {
	n=0
	while IFS= read -r w; do
		if in_list "$w" "$5"; then n=$((n + 1)); else
			fail "$1: \"$w\" is in $2 but missing from $4"; fi
	done <"$3"
	[ "$n" -gt 0 ] && ok "$1: all $n of $2 are in $4"
}

# --- (a) tlspolicy.conf(5) against the shipped policy and `show` --------
if ! [ -s "$conf5" ]; then
	fail "$conf5 does not exist or is empty (built by 'make' from doc/tlspolicy.conf.5.in)"
else
	# the .B lines of the KEYS section: the keys as policy/tp-mkman wrote them
	sed -n '/^\.SH KEYS/,/^\.SH /p' "$conf5" | sed -n 's/^\.B \([^ ]*\).*/\1/p' |
		sed 's/\\-/-/g' | sort -u >"$tmp/page-keys"
	if ! [ -s "$tmp/page-keys" ]; then
		fail "$conf5 has no .SH KEYS section with .B entries (is the line @KEYS@ in doc/tlspolicy.conf.5.in?)"
	fi
	if grep -q '^@[A-Z]*@$' "$conf5"; then
		fail "$conf5 still contains an unreplaced line: $(grep '^@[A-Z]*@$' "$conf5" | tr '\n' ' ')"
	else
		ok "$conf5: every @...@ line was replaced"
	fi

	# keys set in the shipped policy: "name = value" lines, not comments
	sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*=.*/\1/p' "$shipped" |
		tr '[:upper:]' '[:lower:]' | sort -u >"$tmp/shipped-keys"
	if [ -s "$tmp/shipped-keys" ]; then
		compare "shipped policy keys documented" "$shipped" "$tmp/shipped-keys" \
			"the KEYS section of $conf5" "$tmp/page-keys"
	else
		fail "no \"key = value\" line found in $shipped"
	fi

	# every key show prints, on a policy that needs no certificate
	cat >"$tmp/tiny.conf" <<'EOC'
[port 2525]
protocol = smtp
tls = starttls
tls_by = daemon
EOC
	if "$TLSPOLICYCTL" show -c "$tmp/tiny.conf" >"$tmp/show.out" 2>"$tmp/show.err"; then
		sed -n -e 's/^\([a-z_][a-z0-9_]*\) = .*/\1/p' \
			-e 's/^; \([a-z_][a-z0-9_]*\): not set$/\1/p' "$tmp/show.out" |
			sort -u >"$tmp/show-keys"
		if [ -s "$tmp/show-keys" ]; then
			compare "page keys are real keys" "the KEYS section of $conf5" "$tmp/page-keys" \
				"the output of 'tlspolicyctl show'" "$tmp/show-keys"
			compare "every key documented" "the output of 'tlspolicyctl show'" "$tmp/show-keys" \
				"the KEYS section of $conf5" "$tmp/page-keys"
		else
			fail "'tlspolicyctl show -c tiny.conf' printed no key:"
			sed 's/^/  | /' "$tmp/show.out"
		fi
	else
		fail "'tlspolicyctl show -c tiny.conf' failed:"
		sed 's/^/  | /' "$tmp/tiny.conf" "$tmp/show.err"
	fi
fi

# --- (b) the keys of DESIGN.md's policy example --------------------------
if ! [ -r "$design" ]; then
	fail "$design not found: design.md keys not compared"
elif [ -s "$conf5" ]; then
	# the first ```ini block after the "## The policy" heading
	awk '
		/^## / { inpolicy = ($0 ~ /^## The policy[[:space:]]*$/) }
		inpolicy && !done && /^```ini/ { inblock = 1; next }
		inblock && /^```/ { inblock = 0; done = 1 }
		inblock { print }
	' "$design" | sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*=.*/\1/p' |
		sort -u >"$tmp/design-keys"
	if [ -s "$tmp/design-keys" ]; then
		compare "DESIGN.md keys documented" "the \`\`\`ini block of $design" "$tmp/design-keys" \
			"the KEYS section of $conf5" "$tmp/page-keys"
		compare "page keys are in DESIGN.md" "the KEYS section of $conf5" "$tmp/page-keys" \
			"the \`\`\`ini block of $design's \"The policy\" section" "$tmp/design-keys"
	else
		fail "no \`\`\`ini block with keys under \"## The policy\" in $design"
	fi
fi

# --- (c) tlspolicyctl(8) names every verb and long option ---------------
if ! [ -s "$man8" ]; then
	fail "$man8 does not exist or is empty"
else
	"$TLSPOLICYCTL" --help >"$tmp/help" 2>&1 || fail "'tlspolicyctl --help' exited non-zero"
	sed -n '/^Verbs:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' "$tmp/help" >"$tmp/verbs"
	if ! [ -s "$tmp/verbs" ]; then
		fail "'tlspolicyctl --help' lists no verb under \"Verbs:\":"
		sed 's/^/  | /' "$tmp/help"
	fi
	while IFS= read -r verb; do
		if grep -q "^\.SS $verb\$" "$man8"; then
			ok "verb $verb has a section (.SS $verb) in $man8"
		else
			fail "verb \"$verb\" (from 'tlspolicyctl --help') has no \".SS $verb\" section in $man8"
		fi
		if ! "$TLSPOLICYCTL" "$verb" --help >"$tmp/vhelp" 2>&1; then
			fail "'tlspolicyctl $verb --help' exited non-zero"
			continue
		fi
		grep -o -- '--[a-z][a-z-]*' "$tmp/vhelp" | sort -u >"$tmp/opts"
		# each option must appear in the verb's own section
		sed -n "/^\\.SS $verb\$/,/^\\.S[SH] /p" "$man8" | plain >"$tmp/section.txt"
		while IFS= read -r opt; do
			if grep -qF -- "$opt" "$tmp/section.txt"; then
				ok "$verb $opt is in $man8"
			else
				fail "option \"$opt\" (from 'tlspolicyctl $verb --help') is missing from the $verb section of $man8"
			fi
		done <"$tmp/opts"
	done <"$tmp/verbs"
fi

# --- (c2) tlspolicyd(8) names every option of tlspolicyd's usage ---------
mand=$top_srcdir/doc/tlspolicyd.8
daemon=$top_builddir/module/tlspolicyd
if ! [ -s "$mand" ]; then
	fail "$mand does not exist or is empty"
elif ! [ -x "$daemon" ]; then
	fail "$daemon is not built"
else
	"$daemon" -h >"$tmp/dhelp" 2>&1 || fail "'tlspolicyd -h' exited non-zero"
	sed -n 's/^  \(-[a-zA-Z]\).*/\1/p' "$tmp/dhelp" >"$tmp/dopts"
	[ -s "$tmp/dopts" ] || fail "'tlspolicyd -h' lists no option"
	plain <"$mand" >"$tmp/mand.txt"
	while IFS= read -r opt; do
		if grep -qE -- "^\.(B|BI) $opt( |\$)" "$tmp/mand.txt"; then
			ok "tlspolicyd $opt is in $mand"
		else
			fail "option \"$opt\" (from 'tlspolicyd -h') is not described in $mand"
		fi
	done <"$tmp/dopts"
fi

# --- (d) the pages format without warnings -------------------------------
lint_page() {
	page=$1
	if command -v man >/dev/null 2>&1; then
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$page" >/dev/null 2>"$tmp/lint" ||
			echo "man exited non-zero" >>"$tmp/lint"
		if [ -s "$tmp/lint" ]; then
			fail "'man --warnings -l $page' warns:"; sed 's/^/  | /' "$tmp/lint"
		else
			ok "man --warnings -l $page: no warning"
		fi
	fi
	if command -v groff >/dev/null 2>&1; then
		groff -man -ww -z "$page" 2>"$tmp/lint" || echo "groff exited non-zero" >>"$tmp/lint"
		if [ -s "$tmp/lint" ]; then
			fail "'groff -man -ww -z $page' warns:"; sed 's/^/  | /' "$tmp/lint"
		else
			ok "groff -man -ww -z $page: no warning"
		fi
	fi
}
if command -v man >/dev/null 2>&1 || command -v groff >/dev/null 2>&1; then
	for page in "$conf5" "$man8" "$mand"; do
		[ -s "$page" ] && lint_page "$page"
	done
else
	echo "SKIP: neither man nor groff is installed (apt-get install groff-base man-db): pages not checked for roff warnings"
fi

finish
