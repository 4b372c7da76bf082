#!/bin/sh
# show-roundtrip.sh - what `show` prints reads back as the same policy,
# in both its INI and its JSON form
. "$TESTS_SRC/cli/lib.sh"
PY=${PYTHON3:-python3}

# roundtrip NAME FILE
roundtrip() {
	name=$1; conf=$2; d="$tmp/$name"
	mkdir -p "$d/ini" "$d/json"
	if ! "$TLSPOLICYCTL" show --json -c "$conf" >"$d/a.json" 2>"$d/err"; then
		fail "$name: show --json failed"; sed 's/^/  /' "$d/err"; return; fi
	# INI: the text output is itself a policy
	"$TLSPOLICYCTL" show -c "$conf" >"$d/ini/tlspolicy.conf" 2>"$d/err" || fail "$name: show failed"
	"$TLSPOLICYCTL" show --json -c "$d/ini/tlspolicy.conf" >"$d/b.json" 2>"$d/err" ||
		{ fail "$name: show output does not read back"; sed 's/^/  /' "$d/err"; }
	# JSON: rebuild an INI file from the settings
	"$PY" - "$d/a.json" "$d/json/tlspolicy.conf" <<'EOP' || fail "$name: JSON rebuild failed"
import json, sys
doc = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    def section(name, settings):
        f.write("[%s]\n" % name)
        for key, v in settings.items():
            if v["value"] is not None:
                f.write('%s = "%s"\n' % (key, v["value"]) if v["value"] == "" or ";" in v["value"] or "#" in v["value"]
                        else "%s = %s\n" % (key, v["value"]))
    section("global", doc["global"])
    for p in doc["ports"]:
        section(p["section"], p["settings"])
EOP
	"$TLSPOLICYCTL" show --json -c "$d/json/tlspolicy.conf" >"$d/c.json" 2>"$d/err" ||
		{ fail "$name: rebuilt JSON policy does not load"; sed 's/^/  /' "$d/err"; }
	if "$PY" - "$d/a.json" "$d/b.json" "$d/c.json" <<'EOP'
import json, sys
def policy(path):
    doc = json.load(open(path))
    values = lambda s: {k: v["value"] for k, v in s.items()}
    return (values(doc["global"]),
            [(p["section"], p["port"], p["address"], values(p["settings"]), p["resolved"]) for p in doc["ports"]])
a, b, c = (policy(p) for p in sys.argv[1:])
assert a == b, "INI round trip differs:\n%s\n%s" % (a, b)
assert a == c, "JSON round trip differs:\n%s\n%s" % (a, c)
assert a[1], "no ports"
EOP
	then ok "$name round-trips (INI and JSON)"; else fail "$name does not round-trip"; fi
}

roundtrip shipped "$top_srcdir/policy/tlspolicy.conf"
for dir in "$TESTS_WORK"/valid/*/; do
	[ -f "$dir/tlspolicy.conf" ] || continue
	roundtrip "valid-$(basename "$dir")" "$dir/tlspolicy.conf"
done

# sources: every value says where it came from
"$TLSPOLICYCTL" show --json -c "$top_srcdir/policy/tlspolicy.conf" >"$tmp/s.json"
if "$PY" - "$tmp/s.json" <<'EOP'
import json, re, sys
doc = json.load(open(sys.argv[1]))
g = doc["global"]
assert re.fullmatch(r".*/tlspolicy\.conf:\d+", g["min_protocol"]["source"]), g["min_protocol"]
assert g["relay_socket"] == {"value": "@tlspolicy", "source": "default"}, g["relay_socket"]
p587 = [p for p in doc["ports"] if p["port"] == 587][0]
assert p587["settings"]["tls"]["value"] == "starttls"
assert p587["resolved"]["min_protocol"] == "TLSv1.2"
assert "TLS13-AES128-GCM-SHA256" in p587["resolved"]["tls13_suites"]
assert not any("RC4" in s or "DES" in s for s in p587["resolved"]["tls12_suites"])
assert set(p587["resolved"]["banned_classes"]) >= {"RC4", "3DES", "NULL", "aNULL", "EXPORT"}
EOP
then ok "show --json names sources and resolved suites"; else fail "show --json content"; fi

# show refuses an invalid policy, with the diagnostics
printf '[port 587]\nprotocol = smtp\ntls = tls\n' > "$tmp/bad.conf"
run 1 "show an invalid policy" "$TLSPOLICYCTL" show -c "$tmp/bad.conf"
has "$tmp/err" 'bad.conf:3: error: [port 587] tls: "tls" is ambiguous' "show prints the error"

run 0 "show --ciphers" "$TLSPOLICYCTL" show --ciphers
has "$tmp/out" 'ECDHE-RSA-RC4-SHA' "the RC4 suite wolfSSL offers is listed"
run 0 "show --ciphers --json" "$TLSPOLICYCTL" show --ciphers --json
if "$PY" -c 'import json,sys; l=json.load(open(sys.argv[1])); assert any("RC4" in s["classes"] for s in l)' "$tmp/out"
then ok "ciphers JSON lists classes"; else fail "ciphers JSON"; fi
finish
