#!/bin/sh
# shim-linkage.sh - what tlspolicy.so brings into a mail daemon's process
#
# (a) it exports exactly the hooks of module/tlspolicy.map, nothing else;
# (b) it needs no TLS library: libwolfssl exports functions under OpenSSL's
#     names (SSL_CTX_set_tmp_dh_callback, ...), which a preloaded library
#     would bind in front of the daemon's own libssl;
# (c) it has no undefined symbol that only a TLS library could provide.
# Environment (from make check): top_srcdir, top_builddir, TLSPOLICYCTL.

: "${top_builddir:?run from make check}"
. "$TESTS_SRC/cli/lib.sh"

shim=$top_builddir/module/.libs/tlspolicy.so
if ! [ -f "$shim" ]; then
	fail "$shim is not built"
	finish
fi
if ! command -v readelf >/dev/null 2>&1; then
	echo "SKIP: readelf (binutils) is not installed"
	exit 77
fi

# (a) the dynamic symbols it defines, functions and data, global
readelf --dyn-syms -W "$shim" | awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") && $4 != "NOTYPE" { print $8 }' |
	sed 's/@.*//' | sort -u >"$tmp/exported"
printf '%s\n' accept accept4 getpeername getsockname getsockopt setsockopt >"$tmp/want"
if cmp -s "$tmp/exported" "$tmp/want"; then
	ok "exports exactly: $(tr '\n' ' ' <"$tmp/want")"
else
	fail "exports differ from the hooks:"
	diff "$tmp/want" "$tmp/exported" | sed 's/^/  /'
fi

# (b) no TLS library among what it needs
readelf -d -W "$shim" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' >"$tmp/needed"
if grep -Eiq 'wolfssl|libssl|libcrypto|gnutls' "$tmp/needed"; then
	fail "needs a TLS library: $(tr '\n' ' ' <"$tmp/needed")"
else
	ok "needs no TLS library: $(tr '\n' ' ' <"$tmp/needed")"
fi

# (c) no undefined wolfSSL or OpenSSL-named symbol
readelf --dyn-syms -W "$shim" | awk '$7 == "UND" { print $8 }' | sed 's/@.*//' >"$tmp/undef"
if grep -Eq '^(wolf|wc_|SSL_|TLS|EVP_|X509)' "$tmp/undef"; then
	fail "undefined TLS symbols: $(grep -E '^(wolf|wc_|SSL_|TLS|EVP_|X509)' "$tmp/undef" | tr '\n' ' ')"
else
	ok "no undefined TLS symbol"
fi

finish
