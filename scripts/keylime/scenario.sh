#!/bin/bash
# `make keylime`: a domb host attested by an unmodified Keylime 7.14.3 (docs/keylime.md).
#
# Installs Keylime's verifier, registrar and tenant from PyPI into a virtualenv (pinned
# versions beside this script; nothing of Keylime is in the repository), generates their
# configs with Keylime's own keylime_upgrade_config, manufactures a swtpm with an EK
# certificate from a local CA (swtpm_localca), boots a signed domb bundle into it with the
# plan backend, enrols the AK with domb's own verifier, runs `domb agent` (mutual TLS unless
# --no-mtls) serving the launch event log, loads domb's measured-boot policy module
# (policies/keylime/domb_keylime_policy.py) into the verifier, adds the agent with
# `keylime_tenant -c add --mb-policy` and the reference state from `domb keylime policy
# --measured-boot` (or --tpm_policy with --tpm-policy), and checks:
#   * registration + activation with the registrar, the tenant's identity quote, and the
#     verifier's integrity quotes over several quote cycles (attestation_count, PASS);
#   * Keylime's own quote checker refusing a quote for another nonce and a replayed quote;
#   * domb's verifier (attest verify --enrolled) agreeing on the genuine host;
#   * an extend of PCR 13 that no log records: Keylime marks the agent failed (invalid PCR 13),
#     and domb's verifier refuses the same host;
#   * (measured boot) the host rebooted into another signed launch whose log replays: Keylime's
#     measured-boot policy marks it failed and names the event, and domb's verifier refuses it.
# Prints what it checked and how long each step took. Leaves nothing running.
#
# Usage: scripts/keylime/scenario.sh [--domb PATH] [--keep] [--benchmark N] [--no-mtls] [--tpm-policy]
#   --benchmark N   also time N integrity quotes from the running agent (benchmarks/keylime-agent.sh)
#   --no-mtls       agent on plain HTTP (verifier and tenant get enable_agent_mtls = False)
#   --tpm-policy    admit the launch with the tpm_policy (PCR values) instead of the measured-boot policy
#   KEYLIME_CACHE   pip download cache to reuse between runs (default .keylime/pip-cache)
#   KEYLIME_AGENT_MTLS=0   the same as --no-mtls
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/scripts/keylime
DOMB=""
KEEP=0
BENCH=0
MTLS=${KEYLIME_AGENT_MTLS:-1}
POLICY=mb
while [ $# -gt 0 ]; do
  case "$1" in
    --domb) DOMB=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --benchmark) BENCH=$2; shift 2 ;;
    --no-mtls) MTLS=0; shift ;;
    --tpm-policy) POLICY=tpm; shift ;;
    *) echo "usage: $0 [--domb PATH] [--keep] [--benchmark N] [--no-mtls] [--tpm-policy]" >&2; exit 2 ;;
  esac
done

T0=$(date +%s.%N)
STEP_START=$T0
TIMINGS=""
step() {  # step "name": closes the previous step's timer, prints a header
  local now; now=$(date +%s.%N)
  if [ -n "${STEP_NAME:-}" ]; then
    TIMINGS="$TIMINGS$(printf '%7.1f s  %s' "$(echo "$now - $STEP_START" | bc)" "$STEP_NAME")\n"
  fi
  STEP_NAME=$1; STEP_START=$now
  printf '\n== %s\n' "$1"
}
CHECKS=""
check() { CHECKS="$CHECKS  ok  $1\n"; echo "  ok: $1"; }
fail() { echo "FAIL: $1" >&2; dump_logs; exit 1; }

for tool in swtpm swtpm_setup swtpm_localca swtpm_ioctl tpm2_pcrextend tpm2_pcrallocate tpm2_shutdown tpm2_startup curl openssl python3 bc; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing: run scripts/install-deps.sh --keylime" >&2; exit 1; }
done
dpkg-query -W -f='${Status}' libgpgme-dev 2>/dev/null | grep -q "install ok installed" ||
  { echo "FAIL: libgpgme-dev is missing (Keylime's gpg binding builds from source): scripts/install-deps.sh --keylime" >&2; exit 1; }

KL=$(mktemp -d /tmp/domb-keylime.XXXXXX)
RUN=$KL/run
VENV=${KEYLIME_VENV:-$ROOT/.keylime/venv}
CACHE=${KEYLIME_CACHE:-$ROOT/.keylime/pip-cache}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  [ -f "$RUN/swtpm/swtpm.pid" ] && kill -KILL "$(cat "$RUN/swtpm/swtpm.pid")" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "kept $KL"; else rm -rf "$KL"; fi
}
trap cleanup EXIT
dump_logs() {
  for f in "$RUN"/logs/*.log; do [ -f "$f" ] && { echo "--- $f (last 40 lines)"; tail -40 "$f"; }; done
}
start() {  # start NAME CMD...: in its own process group, logs in $RUN/logs/NAME.log
  local name=$1; shift
  setsid "$@" > "$RUN/logs/$name.log" 2>&1 < /dev/null &
  PIDS+=($!)
}

step "domb (debug build unless --domb)"
if [ -z "$DOMB" ]; then
  # Quiet, and not through grep: with nothing to compile there is no line to match (pipefail).
  swift build --product domb > "$KL/swift-build.log" 2>&1 || { tail -30 "$KL/swift-build.log"; fail "swift build --product domb failed"; }
  DOMB=$(swift build --show-bin-path)/domb
fi
"$DOMB" --version
make -s -C images >/dev/null

step "Keylime 7.14.3 from PyPI into a virtualenv (pinned: scripts/keylime/requirements-keylime-7.14.3.txt)"
if ! "$VENV/bin/python" -c 'import keylime, gpg' 2>/dev/null ||
   ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx 'keylime==7.14.3'; then
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --cache-dir "$CACHE" pip==26.3
  "$VENV/bin/pip" install -q --cache-dir "$CACHE" -r "$HERE/requirements-keylime-7.14.3.txt" \
    --build-constraint "$HERE/build-constraints.txt"
fi
"$VENV/bin/pip" freeze | grep -E '^(keylime|cryptography|tornado|sqlalchemy)=='
mkdir -p "$RUN"/{conf,work,logs,tpm_cert_store,swtpm/state,swtpm/localca} "$KL/src"
"$VENV/bin/pip" download -q --cache-dir "$CACHE" --no-deps --no-binary keylime keylime==7.14.3 -d "$KL/src"
tar -C "$KL/src" -xzf "$KL/src/keylime-7.14.3.tar.gz" keylime-7.14.3/templates
"$VENV/bin/keylime_upgrade_config" --defaults --templates "$KL/src/keylime-7.14.3/templates" --out "$RUN/conf" >/dev/null 2>&1
rm -f "$RUN/conf/agent.conf"
if [ "$MTLS" = 0 ]; then
  sed -i -E 's|^enable_agent_mtls = .*|enable_agent_mtls = False|' "$RUN/conf/verifier.conf" "$RUN/conf/tenant.conf"
fi
sed -i -E "s|^tpm_cert_store = .*|tpm_cert_store = $RUN/tpm_cert_store|" "$RUN/conf/tenant.conf"
if [ "$POLICY" = mb ]; then
  # domb's measured-boot policy module, found on the verifier's PYTHONPATH (docs/keylime.md).
  sed -i -E 's|^measured_boot_imports = .*|measured_boot_imports = ["domb_keylime_policy"]|;
             s|^measured_boot_policy_name = .*|measured_boot_policy_name = domb-launch|' "$RUN/conf/verifier.conf"
  grep -qx 'measured_boot_imports = \["domb_keylime_policy"\]' "$RUN/conf/verifier.conf" &&
    grep -qx 'measured_boot_policy_name = domb-launch' "$RUN/conf/verifier.conf" ||
    { echo "FAIL: verifier.conf has no measured_boot_imports / measured_boot_policy_name to set" >&2; exit 1; }
fi
sed -i -E 's|^max_workers = .*|max_workers = 1|' "$RUN/conf/verifier.conf" "$RUN/conf/registrar.conf"
export KEYLIME_DIR=$RUN/work
export KEYLIME_VERIFIER_CONFIG=$RUN/conf/verifier.conf KEYLIME_REGISTRAR_CONFIG=$RUN/conf/registrar.conf
export KEYLIME_TENANT_CONFIG=$RUN/conf/tenant.conf KEYLIME_CA_CONFIG=$RUN/conf/ca.conf
export KEYLIME_LOGGING_CONFIG=$RUN/conf/logging.conf
QUOTE_INTERVAL=$(grep -E '^quote_interval' "$RUN/conf/verifier.conf" | sed -E 's/.*= *//')
echo "verifier quote_interval = $QUOTE_INTERVAL s (Keylime's default), agent mTLS: $([ "$MTLS" = 1 ] && echo on || echo off)," \
  "policy: $([ "$POLICY" = mb ] && echo "measured boot (domb-launch)" || echo tpm_policy)"

step "swtpm manufactured with an EK certificate (swtpm_setup + swtpm_localca)"
start_swtpm() {  # a power cycle: PCRs reset, NV (EK, certificates, the persistent AK) kept
  swtpm socket --tpm2 --tpmstate dir="$RUN/swtpm/state" --flags not-need-init,startup-clear \
    --server type=tcp,bindaddr=127.0.0.1,port=$PORT --ctrl type=tcp,bindaddr=127.0.0.1,port=$((PORT + 1)) \
    --pid file="$RUN/swtpm/swtpm.pid" --log file="$RUN/logs/swtpm.log" --daemon
}
cat > "$RUN/swtpm/swtpm-localca.conf" <<EOF
statedir = $RUN/swtpm/localca
signingkey = $RUN/swtpm/localca/signkey.pem
issuercert = $RUN/swtpm/localca/issuercert.pem
certserial = $RUN/swtpm/localca/certserial
EOF
cat > "$RUN/swtpm/swtpm_setup.conf" <<EOF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $RUN/swtpm/swtpm-localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
EOF
swtpm_setup --tpm2 --tpmstate "$RUN/swtpm/state" --config "$RUN/swtpm/swtpm_setup.conf" \
  --create-ek-cert --create-platform-cert --lock-nvram --overwrite --logfile "$RUN/logs/swtpm_setup.log" >/dev/null
# Below Linux's ephemeral range (ip_local_port_range, 32768-60999 by default): a port there can
# be the local end of one of the run's own client connections when the agent binds PORT+2
# (seen once: "Address already in use"). PORT..PORT+5 are used.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$EPHEMERAL_LOW" -ge 21000 ] 2>/dev/null ||
  fail "ip_local_port_range starts at ${EPHEMERAL_LOW:-?}: the scenario needs free ports between 20000 and it (sysctl net.ipv4.ip_local_port_range)"
PORT=$(( (RANDOM % (EPHEMERAL_LOW - 20000 - 8) + 20000) & ~1 ))
start_swtpm
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT" TSS2_LOG=all+none
cp "$RUN/swtpm/localca/issuercert.pem" "$RUN/tpm_cert_store/swtpm-localca-issuer.pem"
cp "$RUN/swtpm/localca/swtpm-localca-rootca-cert.pem" "$RUN/tpm_cert_store/swtpm-localca-rootca.pem"
check "swtpm has an RSA 2048 EK at 0x81010001 with its certificate at NV 0x01c00002"

step "Keylime verifier and registrar on loopback (verifier first: it makes cv_ca)"
start verifier env PYTHONPATH="$ROOT/policies/keylime" "$VENV/bin/keylime_verifier"
for _ in $(seq 240); do curl -sfk https://127.0.0.1:8881/version >/dev/null && break; sleep 0.25; done
curl -sfk https://127.0.0.1:8881/version >/dev/null || fail "the verifier did not start"
start registrar "$VENV/bin/keylime_registrar"
for _ in $(seq 240); do curl -sf http://127.0.0.1:8890/version >/dev/null && break; sleep 0.25; done
curl -sf http://127.0.0.1:8890/version >/dev/null || fail "the registrar did not start"
CV=$KEYLIME_DIR/cv_ca
CURL_CV=(curl -s --cacert "$CV/cacert.crt" --cert "$CV/client-cert.crt" --key "$CV/client-private.pem")
check "verifier (https 8881) and registrar (http 8890) answer /version"

step "A signed launch bundle, booted into the swtpm with the plan backend"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KL/ca.key" \
  -out "$KL/ca.pem" -subj "/CN=keylime scenario launch CA" -days 30 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KL/signer.key" \
  -out "$KL/signer.csr" -subj "/CN=keylime scenario signer" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' > "$KL/ext.cnf"
openssl x509 -req -in "$KL/signer.csr" -CA "$KL/ca.pem" -CAkey "$KL/ca.key" -CAcreateserial \
  -out "$KL/signer.pem" -days 30 -extfile "$KL/ext.cnf" 2>/dev/null
mkdir -p "$KL/trust" && cp "$KL/ca.pem" "$KL/trust/"
SOURCE_DATE_EPOCH=1700000000 "$DOMB" build examples/demo/launch.dts --key "$KL/signer.key" --cert "$KL/signer.pem" \
  --generation 1 --banks sha256 -o "$KL/launch.bundle" --no-progress >/dev/null
"$DOMB" boot "$KL/launch.bundle" --trust "$KL/trust" --backend plan --eventlog "$KL/eventlog.bin" >/dev/null
"$DOMB" log verify "$KL/eventlog.bin" >/dev/null
check "domb boot measured the bundle into PCRs 12 and 13; the log replays to the TPM's values"

step "An RSA AK, enrolled with domb's verifier (EK certificate chain, MakeCredential/ActivateCredential)"
AK=0x81000100
"$DOMB" ak create --rsa --handle $AK -o "$KL/ak.pub.pem" >/dev/null
AK_NAME=$(cat "$KL/ak.pub.pem.name")
"$DOMB" ak enroll --handle $AK -o "$KL/enrol-request.json" >/dev/null
"$DOMB" attest enroll-challenge "$KL/enrol-request.json" --ca "$RUN/tpm_cert_store" --enrolled "$KL/enrolled" \
  -o "$KL/enrol-challenge.json" >/dev/null
"$DOMB" ak activate --handle $AK "$KL/enrol-challenge.json" -o "$KL/enrol-response.json" >/dev/null
"$DOMB" attest enroll-complete "$KL/enrol-response.json" --enrolled "$KL/enrolled" | head -1
check "AK $AK_NAME enrolled with domb's verifier"

if [ "$POLICY" = mb ]; then
  step "domb keylime policy --measured-boot: the reference state of the bundle's golden events on PCRs 12 and 13"
  "$DOMB" keylime policy "$KL/launch.bundle" --trust "$KL/trust" --measured-boot -o "$KL/mb_refstate.json"
  "$VENV/bin/python" -c 'import json, sys
launch = json.load(open(sys.argv[1]))["domb_launch"]
for pcr, events in sorted(launch["pcrs"].items()):
    print(f"PCR {pcr}: " + ", ".join(e["description"] for e in events))' "$KL/mb_refstate.json"
  # The policy module under Keylime's own parser (tpm2_eventlog) on the log domb boot wrote.
  PYTHONPATH="$ROOT/policies/keylime" "$VENV/bin/python" -m domb_keylime_policy "$KL/eventlog.bin" "$KL/mb_refstate.json" 2>/dev/null |
    tee "$KL/mb_offline.txt"
  grep -qx "domb-launch: accepted" "$KL/mb_offline.txt" || fail "the domb-launch policy refused the genuine log offline"
  check "Keylime's parser reads the launch log and the domb-launch policy accepts it against the refstate"
  # The same sha256 bundle booted on a TPM with four banks: its module records list every
  # bank's digest, so they are not the refstate's bytes. Accepted; a record naming, for a bank
  # the bundle lacks, another digest than the one its event extended is refused (no digest
  # covers the record, so Keylime's replay cannot see it).
  mkdir -p "$RUN/swtpm4"
  start swtpm4 swtpm socket --tpm2 --tpmstate dir="$RUN/swtpm4" --flags not-need-init,startup-clear \
    --server type=tcp,bindaddr=127.0.0.1,port=$((PORT + 4)) --ctrl type=tcp,bindaddr=127.0.0.1,port=$((PORT + 5))
  TPM4="swtpm:host=127.0.0.1,port=$((PORT + 4))"
  for _ in $(seq 40); do "$DOMB" tpm info --tpm "$TPM4" >/dev/null 2>&1 && break; sleep 0.25; done
  "$DOMB" tpm info --tpm "$TPM4" --json | "$VENV/bin/python" -c 'import json, sys
sys.exit(set(json.load(sys.stdin)["activeBanks"]) != {"sha1", "sha256", "sha384", "sha512"})' ||
    fail "the second swtpm does not have the four banks sha1, sha256, sha384, sha512"
  "$DOMB" boot "$KL/launch.bundle" --trust "$KL/trust" --backend plan --tpm "$TPM4" --lock-dir "$RUN/swtpm4" \
    --eventlog "$KL/eventlog4.bin" >/dev/null
  PYTHONPATH="$ROOT/policies/keylime" "$VENV/bin/python" -m domb_keylime_policy "$KL/eventlog4.bin" "$KL/mb_refstate.json" \
    > "$KL/mb_offline4.txt" 2>/dev/null || true
  grep -qx "domb-launch: accepted" "$KL/mb_offline4.txt" || { cat "$KL/mb_offline4.txt"; fail "the domb-launch policy refused the genuine four-bank log"; }
  "$DOMB" log show "$KL/eventlog4.bin" --json | "$VENV/bin/python" -c 'import json, sys
log = bytearray(open(sys.argv[1], "rb").read())
tagged = [e for e in json.load(sys.stdin)["events"] if e["type"] == "EV_EVENT_TAG"]
digest = bytes.fromhex(tagged[0]["digests"]["sha384"])
first = log.find(digest)  # in the event digests; the second is inside the record
second = log.find(digest, first + 1)
assert 0 < first < second, "no sha384 digest inside the module record"
log[second + len(digest) - 1] ^= 0xFF
open(sys.argv[2], "wb").write(log)' "$KL/eventlog4.bin" "$KL/forged4.bin"
  PYTHONPATH="$ROOT/policies/keylime" "$VENV/bin/python" -m domb_keylime_policy "$KL/forged4.bin" "$KL/mb_refstate.json" \
    > "$KL/mb_forged4.txt" 2>/dev/null || true
  grep -q "refused: .*naming other digests than the event extended" "$KL/mb_forged4.txt" ||
    { cat "$KL/mb_forged4.txt"; fail "the domb-launch policy did not refuse a module record naming another sha384 digest"; }
  check "on a four-bank TPM the policy accepts the sha256 bundle's launch and refuses a record naming another sha384 digest"
  # The other way round: a four-bank bundle on that TPM with only sha256 left active
  # (TPM2_PCR_Allocate takes effect at the next reset): judged on sha256, the bank in common.
  tpm2_pcrallocate -T "$TPM4" sha1:none+sha256:all+sha384:none+sha512:none >/dev/null
  tpm2_shutdown -c -T "$TPM4" && swtpm_ioctl --tcp 127.0.0.1:$((PORT + 5)) -i && tpm2_startup -c -T "$TPM4"
  SOURCE_DATE_EPOCH=1700000000 "$DOMB" build examples/demo/launch.dts --key "$KL/signer.key" --cert "$KL/signer.pem" \
    --generation 1 --banks sha1,sha256,sha384,sha512 -o "$KL/launch4.bundle" --no-progress >/dev/null
  "$DOMB" boot "$KL/launch4.bundle" --trust "$KL/trust" --backend plan --tpm "$TPM4" --lock-dir "$RUN/swtpm4" \
    --eventlog "$KL/eventlog1.bin" >/dev/null
  "$DOMB" keylime policy "$KL/launch4.bundle" --trust "$KL/trust" --measured-boot -o "$KL/mb_refstate4.json"
  PYTHONPATH="$ROOT/policies/keylime" "$VENV/bin/python" -m domb_keylime_policy "$KL/eventlog1.bin" "$KL/mb_refstate4.json" \
    > "$KL/mb_offline1.txt" 2>/dev/null || true
  grep -qx "domb-launch: accepted" "$KL/mb_offline1.txt" || { cat "$KL/mb_offline1.txt"; fail "the domb-launch policy refused a four-bank bundle's launch on a sha256-only TPM"; }
  check "on a sha256-only TPM the policy accepts a four-bank bundle's launch"
else
  step "domb keylime policy: the tpm_policy for the bundle's predicted PCRs 12 and 13"
  "$DOMB" keylime policy "$KL/launch.bundle" --trust "$KL/trust" -o "$KL/tpm_policy.json"
  cat "$KL/tpm_policy.json"
fi
"$DOMB" predict "$KL/launch.bundle" --trust "$KL/trust" --json > "$KL/expected-pcrs.json"

step "domb agent registers with the registrar and activates"
AGENT_PORT=$((PORT + 2))
UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0d0b0
AGENT_TLS=(--trusted-client-ca "$CV/cacert.crt")
[ "$MTLS" = 0 ] && AGENT_TLS=(--no-mtls)
start agent "$DOMB" agent --ak-handle $AK --uuid $UUID --listen 127.0.0.1:$AGENT_PORT \
  --state-directory "$KL/agent" "${AGENT_TLS[@]}" --eventlog "$KL/eventlog.bin" --log-level info
T_REG=$(date +%s.%N)
for _ in $(seq 240); do grep -q "registered and activated" "$RUN/logs/agent.log" && break; sleep 0.25; done
grep -q "registered and activated" "$RUN/logs/agent.log" || fail "domb agent did not register"
echo "registered after $(echo "$(date +%s.%N) - $T_REG" | bc | cut -c1-5) s"
"$VENV/bin/keylime_tenant" -c regstatus -u $UUID > "$KL/regstatus.txt" 2>&1 || { cat "$KL/regstatus.txt"; fail "regstatus"; }
grep -q "exists on" "$KL/regstatus.txt" || { cat "$KL/regstatus.txt"; fail "the registrar does not list the agent as registered"; }
check "the registrar accepted the EK, EK certificate and AK, and the ActivateCredential auth tag"

tenant_add() {  # tenant_add OUT: keylime_tenant -c add with the scenario's policy
  if [ "$POLICY" = mb ]; then
    "$VENV/bin/keylime_tenant" -c add -u $UUID --mb-policy "$KL/mb_refstate.json" > "$1" 2>&1
  else
    "$VENV/bin/keylime_tenant" -c add -u $UUID --tpm_policy "$(cat "$KL/tpm_policy.json")" > "$1" 2>&1
  fi
}
step "keylime_tenant -c add with the policy (the tenant checks the EK certificate and an identity quote)"
T_ADD=$(date +%s.%N)
tenant_add "$KL/add.txt" || { cat "$KL/add.txt"; fail "keylime_tenant -c add"; }
grep -q "Quote from .* validated" "$KL/add.txt" || { cat "$KL/add.txt"; fail "the tenant did not validate the identity quote"; }
check "the tenant validated the EK certificate against tpm_cert_store and the agent's identity quote"

status() { "${CURL_CV[@]}" "https://127.0.0.1:8881/v2.6/agents/$UUID" | "$VENV/bin/python" -c '
import json, sys
r = json.load(sys.stdin)["results"]
print(r["attestation_status"], r["attestation_count"], r["operational_state"], r.get("last_event_id") or "-")'; }
FIRST=""
for _ in $(seq 240); do
  read -r STATUS COUNT STATE EVENT < <(status)
  if [ "$STATUS" = PASS ] && [ "$COUNT" -ge 1 ] && [ -z "$FIRST" ]; then FIRST=$(echo "$(date +%s.%N) - $T_ADD" | bc); fi
  [ "$STATUS" = PASS ] && [ "$COUNT" -ge 4 ] && break
  [ "$STATUS" = FAIL ] && break
  sleep 0.25
done
[ "$STATUS" = PASS ] && [ "$COUNT" -ge 4 ] || { echo "status $STATUS count $COUNT state $STATE event $EVENT"; fail "the verifier did not attest the agent over 4 quote cycles"; }
printf 'first attested state %.1f s after tenant add; %s attestations, state %s\n' "$FIRST" "$COUNT" "$STATE"
echo "time_to_first_attestation_s=$FIRST quote_interval_s=$QUOTE_INTERVAL" > "$KL/first-attestation.txt"
check "the verifier attested the agent over $COUNT quote cycles (attestation_status PASS)"
if [ "$POLICY" = mb ]; then
  # The verifier says which checks ran: the log replayed against the quote, then the policy.
  grep -q "Compared PCRs .*12.*13\|Compared PCRs .*13.*12" "$RUN/logs/verifier.log" ||
    fail "the verifier did not compare PCRs 12 and 13 with the measured-boot log"
  grep -q "Checking measured boot log against policy" "$RUN/logs/verifier.log" ||
    fail "the verifier did not evaluate the measured-boot policy"
  grep -q "Boot attestation failed" "$RUN/logs/verifier.log" && fail "the measured-boot policy refused the genuine host"
  check "the verifier replayed PCRs 12 and 13 from the agent's log and the domb-launch policy admitted it"
fi

step "Keylime's own quote checker refuses a quote for another nonce, and a replayed quote"
NONCE=$(head -c 15 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
AGENT_URL=http://127.0.0.1:$AGENT_PORT
CURL_AGENT=(curl -s)
if [ "$MTLS" = 1 ]; then
  AGENT_URL=https://127.0.0.1:$AGENT_PORT
  CURL_AGENT=(curl -s --cacert "$KL/agent/cert.pem" --cert "$CV/client-cert.crt" --key "$CV/client-private.pem")
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KL/agent/cert.pem" "$AGENT_URL/version" || true)
  [ "$code" = 000 ] || fail "the agent answered a client without a certificate (HTTP $code)"
  check "the agent refuses a TLS client without a certificate from the verifier's CA"
fi
"${CURL_AGENT[@]}" "$AGENT_URL/v2.5/quotes/integrity?nonce=$NONCE&mask=0x3000&partial=0" > "$KL/genuine.json"
"$VENV/bin/python" "$HERE/keylime_check_quote.py" "$KL/genuine.json" "$NONCE" --registrar-agent "$UUID" > "$KL/kcheck.txt" 2>&1 || { cat "$KL/kcheck.txt"; fail "Keylime refused a genuine quote"; }
cat "$KL/kcheck.txt"
grep -q "^genuine: accepted" "$KL/kcheck.txt" && grep -q "^other nonce: refused" "$KL/kcheck.txt" &&
  grep -q "^replayed: refused" "$KL/kcheck.txt" || fail "Keylime's checker did not refuse the wrong nonce and the replay"
check "Keylime's tpm_main.check_quote accepts the genuine quote, refuses it for another nonce and when replayed"

if [ "$BENCH" -gt 0 ]; then
  step "benchmark: $BENCH integrity quotes from domb agent (keep-alive client) vs one tpm2_quote process per quote"
  "$VENV/bin/python" "$HERE/quote_rate.py" "$AGENT_URL" "$BENCH" "$MTLS" "$KL/agent/cert.pem" "$CV" | tee "$KL/bench.txt"
  "$DOMB" ak show --handle $AK >/dev/null  # the TPM is free between quotes
  T_Q=$(date +%s.%N)
  for i in $(seq "$BENCH"); do
    # swtpm serves one connection at a time: retry when the agent is answering the verifier.
    for try in 1 2 3 4 5; do
      tpm2_quote -c $AK -l sha256:12,13,16 -q "$(printf %040x "$i")" -m "$KL/q.msg" -s "$KL/q.sig" -o "$KL/q.pcrs" \
        >/dev/null 2>"$KL/q.err" && break
      [ "$try" = 5 ] && { cat "$KL/q.err"; fail "tpm2_quote"; }
      sleep 0.05
    done
  done
  TQ=$(echo "$(date +%s.%N) - $T_Q" | bc)
  AGENT_RATE=$(grep -oE '[0-9.]+ quotes/s' "$KL/bench.txt" | cut -d' ' -f1)
  printf 'baseline tpm2_quote (one process per quote, PCRs 12,13,16): %d quotes in %.2f s = %.1f quotes/s\n' "$BENCH" "$TQ" "$(echo "$BENCH / $TQ" | bc -l)"
  printf 'ratio agent/tpm2_quote: %.2f; Keylime asks each agent for %.2f quotes/s (quote_interval %s s): headroom %.0fx\n' \
    "$(echo "$AGENT_RATE / ($BENCH / $TQ)" | bc -l)" "$(echo "1 / $QUOTE_INTERVAL" | bc -l)" "$QUOTE_INTERVAL" \
    "$(echo "$AGENT_RATE * $QUOTE_INTERVAL" | bc -l)"
fi

step "domb's verifier on the same quote endpoint: the genuine host"
"$DOMB" attest verify "$KL/genuine.json" --enrolled "$KL/enrolled" --ak-name "$AK_NAME" \
  --nonce "$(printf %s "$NONCE" | xxd -p)" --pcrs sha256:12,13,16 --expected-pcrs "$KL/expected-pcrs.json" \
  > "$KL/domb-genuine.txt" || { cat "$KL/domb-genuine.txt"; fail "domb's verifier refused the genuine host"; }
head -1 "$KL/domb-genuine.txt"
check "domb attest verify --enrolled accepts the genuine host (PCRs 12, 13 = the bundle's prediction)"

wait_for_failure() {  # polls the verifier until it fails the agent; sets STATUS COUNT STATE EVENT
  for _ in $(seq 240); do
    read -r STATUS COUNT STATE EVENT < <(status)
    [ "$STATUS" = FAIL ] && return 0
    sleep 0.25
  done
  return 1
}
domb_refuses() {  # domb_refuses NAME PCR: a fresh quote from the agent, which domb's verifier must refuse
  local nonce; nonce=$(head -c 15 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
  "${CURL_AGENT[@]}" "$AGENT_URL/v2.5/quotes/integrity?nonce=$nonce&mask=0x3000&partial=0" > "$KL/$1.json"
  if "$DOMB" attest verify "$KL/$1.json" --enrolled "$KL/enrolled" --ak-name "$AK_NAME" \
    --nonce "$(printf %s "$nonce" | xxd -p)" --pcrs sha256:12,13,16 --expected-pcrs "$KL/expected-pcrs.json" > "$KL/domb-$1.txt"; then
    cat "$KL/domb-$1.txt"; fail "domb's verifier accepted the $1 host"
  fi
  grep -m2 -E "REFUSED|sha256:$2" "$KL/domb-$1.txt"
}

step "Tamper: extend PCR 13 with something no log records"
tpm2_pcrextend "13:sha256=$(printf 'not in any log' | sha256sum | cut -d' ' -f1)"
T_TAMPER=$(date +%s.%N)
wait_for_failure || fail "the verifier did not fail the tampered agent (status $STATUS)"
printf 'Keylime failed the agent %.1f s after the extend: state %s, event %s\n' "$(echo "$(date +%s.%N) - $T_TAMPER" | bc)" "$STATE" "$EVENT"
case "$EVENT" in *invalid_pcr_13*) ;; *) fail "the failure is not about PCR 13: $EVENT" ;; esac
if [ "$POLICY" = mb ]; then
  case "$EVENT" in measured_boot.*) ;; *) fail "the failure is not a measured-boot one: $EVENT" ;; esac
fi
check "Keylime marked the agent failed: $EVENT"
domb_refuses tampered 13
check "domb attest verify --enrolled refuses the tampered host too (sha256:13 is not the golden value)"

if [ "$POLICY" = mb ]; then
  step "Tamper: the host reboots into another signed launch (web's command line changed); its log replays"
  "$VENV/bin/keylime_tenant" -c delete -u $UUID > "$KL/delete.txt" 2>&1 || { cat "$KL/delete.txt"; fail "keylime_tenant -c delete"; }
  # An orderly reboot: TPM2_Shutdown(CLEAR), swtpm stopped through its control channel and
  # started again (an unorderly one clears TPMS_CLOCK_INFO.safe, which Keylime refuses).
  SWTPM_PID=$(cat "$RUN/swtpm/swtpm.pid")
  tpm2_shutdown -c
  swtpm_ioctl --tcp 127.0.0.1:$((PORT + 1)) -s
  for _ in $(seq 50); do kill -0 "$SWTPM_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SWTPM_PID" 2>/dev/null && fail "swtpm did not stop"
  start_swtpm
  sed -e "s|\"\.\./\.\./images/out/|\"$ROOT/images/out/|" -e 's|bootargs = "console=hvc0 web";|bootargs = "console=hvc0 web init=/bin/sh";|' \
    examples/demo/launch.dts > "$KL/other.dts"
  grep -q 'init=/bin/sh' "$KL/other.dts" || fail "examples/demo/launch.dts has no web command line to change"
  SOURCE_DATE_EPOCH=1700000000 "$DOMB" build "$KL/other.dts" --key "$KL/signer.key" --cert "$KL/signer.pem" \
    --generation 2 --banks sha256 -o "$KL/other.bundle" --no-progress >/dev/null
  "$DOMB" boot "$KL/other.bundle" --trust "$KL/trust" --backend plan --eventlog "$KL/eventlog-other.bin" >/dev/null
  "$DOMB" log verify "$KL/eventlog-other.bin" >/dev/null
  mv -f "$KL/eventlog-other.bin" "$KL/eventlog.bin"  # what the agent serves from now on
  check "the host booted another signed launch after a TPM reset; its log replays to the TPM's PCRs"
  T_OTHER=$(date +%s.%N)
  tenant_add "$KL/add-other.txt" || { cat "$KL/add-other.txt"; fail "keylime_tenant -c add (other launch)"; }
  wait_for_failure || fail "the verifier did not fail the host running another launch (status $STATUS)"
  printf 'Keylime failed the agent %.1f s after tenant add: state %s, event %s\n' \
    "$(echo "$(date +%s.%N) - $T_OTHER" | bc)" "$STATE" "$EVENT"
  [ "$EVENT" = measured_boot.policy_domb-launch ] || fail "the failure is not the domb-launch policy's: $EVENT"
  REASON=$(grep -o "Boot attestation failed for agent $UUID, policy domb-launch, .*" "$RUN/logs/verifier.log" | tail -1 |
    sed 's/.*, reason=//')
  echo "verifier's reason: $REASON"
  # web's command line is in the launch DTB, the Xenstore plan and its own record, all on PCR 12.
  case "$REASON" in "PCR 12: event 1 (launch-dtb"*"| event 6 (cmdline web"*"record 'domb:cmdline:web' with content 'console=hvc0 web init=/bin/sh' where the bundle has 'console=hvc0 web'"*) ;;
    *) fail "the verifier's reason does not name the events that differ" ;; esac
  grep -q "invalid_pcr_1[23]" <("${CURL_CV[@]}" "https://127.0.0.1:8881/v2.6/agents/$UUID") &&
    fail "the verifier reports a replay mismatch: the log should replay"
  check "Keylime's measured-boot policy failed the host and named the event: $EVENT"
  domb_refuses other-launch 12
  check "domb attest verify --enrolled refuses that host too (sha256:12 is not the golden value)"
fi

step "done"
printf '\nChecked:\n%b' "$CHECKS"
printf '\nStep timings:\n%b' "$TIMINGS"
printf 'total %.1f s\n' "$(echo "$(date +%s.%N) - $T0" | bc)"
echo "keylime scenario: $(printf '%b' "$CHECKS" | grep -c ' ok ') passed, 0 failed"
