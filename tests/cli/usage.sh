#!/bin/sh
# usage.sh - tlspolicyctl's verbs, options and exit codes
. "$TESTS_SRC/cli/lib.sh"

run 2 "no verb" "$TLSPOLICYCTL"
has "$tmp/err" 'usage: tlspolicyctl VERB' "no verb prints usage"
run 2 "unknown verb" "$TLSPOLICYCTL" frobnicate
has "$tmp/err" 'unknown verb "frobnicate"' "unknown verb named"
run 0 "--help" "$TLSPOLICYCTL" --help
run 0 "--version" "$TLSPOLICYCTL" --version
has "$tmp/out" 'tlspolicyctl ' "version printed"
for verb in validate show explain; do
	run 0 "$verb --help" "$TLSPOLICYCTL" "$verb" --help
	has "$tmp/out" "usage: tlspolicyctl $verb" "$verb --help shows its usage"
	run 2 "$verb with an unknown option" "$TLSPOLICYCTL" "$verb" --bogus
	has "$tmp/err" 'unknown option "--bogus"' "$verb names the bad option"
done
run 2 "validate with a stray argument" "$TLSPOLICYCTL" validate file.conf
has "$tmp/err" 'the file goes after -c' "stray argument explained"

run 1 "validate a missing file" "$TLSPOLICYCTL" validate -c "$tmp/none.conf"
has "$tmp/err" "$tmp/none.conf: error: cannot read the policy file: No such file or directory" "missing file named"

# Ansible copies the candidate to a temporary name and runs validate -c %s
mkdir -p "$tmp/ansible"
cat > "$tmp/ansible/tmpXYZ.conf" <<'EOC'
[global]
tls_by = daemon
[port 587]
protocol = smtp
tls = starttls
EOC
run 0 "validate -c on a temporary file" "$TLSPOLICYCTL" validate -c "$tmp/ansible/tmpXYZ.conf"
has "$tmp/out" 'valid, 1 port managed, 0 warnings' "summary on stdout"

# TLSPOLICY_CONF names the default file
run 0 "TLSPOLICY_CONF honoured" env TLSPOLICY_CONF="$tmp/ansible/tmpXYZ.conf" "$TLSPOLICYCTL" validate
has "$tmp/out" "$tmp/ansible/tmpXYZ.conf: valid" "TLSPOLICY_CONF file checked"

# warnings: exit 0, or 1 with --strict; --json carries the same list
cat > "$tmp/ansible/warn.conf" <<'EOC'
[global]
tls_by = daemon
enforce = audit
[port 25]
protocol = smtp
tls = starttls
EOC
run 0 "warnings pass without --strict" "$TLSPOLICYCTL" validate -c "$tmp/ansible/warn.conf"
cp "$tmp/err" "$tmp/warn.txt"
has "$tmp/warn.txt" "warn.conf:3: warning: [global] enforce: audit mode refuses nothing" "audit warning"
has "$tmp/warn.txt" "warn.conf:6: warning: [port 25] tls: starttls on port 25" "port 25 warning"
run 1 "warnings fail with --strict" "$TLSPOLICYCTL" validate --strict -c "$tmp/ansible/warn.conf"
has "$tmp/out" 'failing because of --strict' "strict failure explained"
run 0 "validate --json" "$TLSPOLICYCTL" validate --json -c "$tmp/ansible/warn.conf"
if "${PYTHON3:-python3}" - "$tmp/out" "$tmp/warn.txt" <<'EOP'
import json, sys
items = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().splitlines()
assert isinstance(items, list), "not a list"
assert [i["text"] for i in items] == text, (items, text)
for i in items:
    assert set(i) == {"file", "line", "severity", "section", "key", "value", "message", "text"}, i
    assert i["severity"] == "warning" and isinstance(i["line"], int)
EOP
then ok "--json is the same list as the text"; else fail "--json differs from the text"; fi
run 1 "validate --json --strict" "$TLSPOLICYCTL" validate --json --strict -c "$tmp/ansible/warn.conf"
finish
