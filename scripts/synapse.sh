# Real Synapses on loopback for the tests. Source this file, then:
#   synapse_install   # venv under .synapse/ (pinned version), reused when present
#   synapse_start     # five fresh servers (config + SQLite database, free ports), started
#                     # in parallel; exports, for each, MATRIX_TRANSPLANT_TEST[_NAME]_HOMESERVER
#                     # and ..._REGISTRATION_SECRET:
#                     #   (no name)  server_name localhost, no federation, tight rc_login
#                     #              (the 429 tests of password logins), the rest unlimited;
#                     #              single sign-on through two providers, "fake" and
#                     #              "other", both served by scripts/fake-idp.py, whose URL
#                     #              is exported as MATRIX_TRANSPLANT_TEST_IDP;
#                     #   ORG, PERSONAL  two servers that federate with each other over TLS
#                     #              on loopback (server names 127.0.0.1:PORT), unlimited;
#                     #   LIMITED    one server with stock-shaped rate limits, scaled so a
#                     #              test of waiting on them takes seconds.
#                     #              Its password logins get access tokens that live 2 s
#                     #              (refresh tokens 30 s), so a move outlives several;
#                     #   NEXTGEN    one server that delegates authentication to a fake
#                     #              Matrix Authentication Service (scripts/fake-mas.py,
#                     #              OAuth 2.0; its access tokens live 3 s), exported as
#                     #              MATRIX_TRANSPLANT_TEST_NEXTGEN_HOMESERVER and
#                     #              ..._NEXTGEN_MAS (the provider's URL).
#   synapse_stop      # SIGTERM to all; prints the logs if $1 is "failed"
# For benchmarks: synapse_pair_start LIMITS_YAML starts ORG and PERSONAL only, with the
# given rate-limit config (see scaled_stock_limits).
SYNAPSE_VERSION=1.163.2
SYNAPSE_HOME=${SYNAPSE_HOME:-$(pwd)/.synapse}
SYNAPSE_PIDS=()
SYNAPSE_DIRS=()

synapse_install() {
  local venv="$SYNAPSE_HOME/venv"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import synapse, authlib, sys; sys.exit(not synapse.__version__.startswith('$SYNAPSE_VERSION'))" 2>/dev/null; then
    return 0
  fi
  echo "installing Synapse $SYNAPSE_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$SYNAPSE_HOME"
  python3 -m venv "$venv"
  # [oidc] brings authlib: the plain server signs on through a fake identity provider.
  "$venv/bin/pip" install --quiet --disable-pip-version-check "matrix-synapse[oidc]==$SYNAPSE_VERSION"
}

_free_port() {
  "$SYNAPSE_HOME/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_token() {
  "$SYNAPSE_HOME/venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))'
}

# Every limiter out of the way.
unlimited_limits() {
  local big='{per_second: 10000, burst_count: 100000}'
  cat <<LIM
rc_message: $big
rc_registration: $big
rc_login: {address: $big, account: $big, failed_attempts: $big}
rc_joins: {local: $big, remote: $big}
rc_joins_per_room: $big
rc_invites: {per_room: $big, per_user: $big, per_issuer: $big}
rc_admin_redaction: $big
rc_3pid_validation: $big
rc_room_creation: $big
rc_presence: {per_user: $big}
rc_delayed_event_mgmt: $big
rc_reports: $big
rc_federation: {window_size: 1000, sleep_limit: 100000, sleep_delay: 1, reject_limit: 100000, concurrent: 1000}
LIM
}

# Synapse's stock limiters (synapse/config/ratelimiting.py) with every rate multiplied by
# $1 and the bursts unchanged: the same shape, $1 times faster. Registration, login and
# room creation stay unlimited (test setup, not the move).
scaled_stock_limits() {
  local f=$1 big='{per_second: 10000, burst_count: 100000}'
  rate() { "$SYNAPSE_HOME/venv/bin/python" -c "print($1 * $f)"; }
  cat <<LIM
rc_message: {per_second: $(rate 0.2), burst_count: 10}
rc_joins: {local: {per_second: $(rate 0.1), burst_count: 10}, remote: {per_second: $(rate 0.01), burst_count: 10}}
rc_invites: {per_room: {per_second: $(rate 0.3), burst_count: 10}, per_user: {per_second: $(rate 0.003), burst_count: 5}, per_issuer: {per_second: $(rate 0.3), burst_count: 10}}
rc_registration: $big
rc_login: {address: $big, account: $big, failed_attempts: $big}
rc_room_creation: $big
rc_joins_per_room: $big
rc_presence: {per_user: $big}
LIM
}

# _synapse_config DIR PORT SERVER_NAME LIMITS FEDERATION_YAML: writes DIR/homeserver.yaml.
_synapse_config() {
  local dir=$1 port=$2 name=$3 limits=$4 federation=$5
  mkdir -p "$dir"
  cat > "$dir/log.yaml" <<LOG
version: 1
formatters:
  plain: {format: '%(asctime)s %(levelname)s %(name)s %(message)s'}
handlers:
  file: {class: logging.FileHandler, filename: $dir/homeserver.log, formatter: plain}
root: {level: INFO, handlers: [file]}
disable_existing_loggers: false
LOG
  cat > "$dir/homeserver.yaml" <<CONF
server_name: "$name"
public_baseurl: http://127.0.0.1:$port/
pid_file: $dir/homeserver.pid
database: {name: sqlite3, args: {database: $dir/homeserver.db}}
media_store_path: $dir/media
signing_key_path: $dir/signing.key
log_config: $dir/log.yaml
registration_shared_secret: "$(cat "$dir/secret")"
macaroon_secret_key: "$(_token)"
form_secret: "$(_token)"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
presence: {enabled: false}
bcrypt_rounds: 4
$federation
$limits
CONF
}

# _synapse_launch NAME DIR PORT: starts the server in the background.
_synapse_launch() {
  local label=$1 dir=$2
  "$SYNAPSE_HOME/venv/bin/python" -m synapse.app.homeserver -c "$dir/homeserver.yaml" > "$dir/stdout.log" 2>&1 &
  SYNAPSE_PIDS+=($!)
  SYNAPSE_DIRS+=("$dir")
  echo "$label" > "$dir/label"
}

# _synapse_wait URL [FED_PORT] DIR: until the client API (and the federation listener) answer.
_synapse_wait() {
  local url=$1 fed=$2 dir=$3
  for _ in $(seq 1 120); do
    if "$SYNAPSE_HOME/venv/bin/python" - "$url" "$fed" <<'PY' 2>/dev/null
import ssl, sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/_matrix/client/versions", timeout=1)
if sys.argv[2]:
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    urllib.request.urlopen("https://127.0.0.1:%s/_matrix/key/v2/server" % sys.argv[2], timeout=1, context=ctx)
PY
    then return 0; fi
    sleep 0.5
  done
  echo "Synapse at $url did not start:" >&2
  cat "$dir/stdout.log" "$dir/homeserver.log" >&2 2>/dev/null || true
  return 1
}

# _synapse_export VAR_PREFIX URL DIR
_synapse_export() {
  export "$1_HOMESERVER=$2"
  export "$1_REGISTRATION_SECRET=$(cat "$3/secret")"
}

_synapse_new_dir() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/synapse.XXXXXX")
  _token > "$dir/secret"
  echo "$dir"
}

# synapse_pair_start LIMITS_YAML: ORG and PERSONAL, federating over TLS on loopback.
synapse_pair_launch() {
  local limits=$1 base cert key
  base=$(mktemp -d "${TMPDIR:-/tmp}/synapse-pair.XXXXXX")
  SYNAPSE_DIRS+=("$base")
  cert=$base/fed.crt key=$base/fed.key
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$key" -out "$cert" -days 3 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
  local org_port org_fed per_port per_fed
  org_port=$(_free_port) org_fed=$(_free_port) per_port=$(_free_port) per_fed=$(_free_port)
  PAIR=()
  local label port fed dir
  for label in ORG PERSONAL; do
    if [ $label = ORG ]; then port=$org_port fed=$org_fed; else port=$per_port fed=$per_fed; fi
    dir=$(_synapse_new_dir)
    _synapse_config "$dir" "$port" "127.0.0.1:$fed" "$limits" "listeners:
  - {port: $port, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client], compress: false}]}
  - {port: $fed, bind_addresses: ['127.0.0.1'], type: http, tls: true, resources: [{names: [federation], compress: false}]}
tls_certificate_path: $cert
tls_private_key_path: $key
federation_verify_certificates: false
ip_range_blacklist: []
federation_domain_whitelist: ['127.0.0.1:$org_fed', '127.0.0.1:$per_fed']"
    _synapse_launch "$label" "$dir"
    PAIR+=("$label http://127.0.0.1:$port $fed $dir")
  done
}

_synapse_pair_wait() {
  local entry label url fed dir
  for entry in "${PAIR[@]}"; do
    read -r label url fed dir <<< "$entry"
    _synapse_wait "$url" "$fed" "$dir" || return 1
  done
  for entry in "${PAIR[@]}"; do
    read -r label url fed dir <<< "$entry"
    _synapse_export "MATRIX_TRANSPLANT_TEST_$label" "$url" "$dir"
    echo "Synapse $SYNAPSE_VERSION $label up at $url (server name 127.0.0.1:$fed, files in $dir)"
  done
}

synapse_pair_start() {
  synapse_pair_launch "$1"
  _synapse_pair_wait
}

# _synapse_single_launch LABEL LIMITS [EXTRA_YAML]: sets SINGLE="URL DIR".
_synapse_single_launch() {
  local label=$1 limits=$2 extra=${3:-} port dir
  port=$(_free_port)
  dir=$(_synapse_new_dir)
  _synapse_config "$dir" "$port" localhost "$limits" "listeners:
  - {port: $port, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client], compress: false}]}
federation_domain_whitelist: []
$extra"
  _synapse_launch "$label" "$dir"
  SINGLE="http://127.0.0.1:$port $dir"
}

# _synapse_nextgen_launch: a server delegating to the fake MAS; sets NEXTGEN="URL DIR MAS".
_synapse_nextgen_launch() {
  local port mas dir secret
  port=$(_free_port) mas=$(_free_port)
  dir=$(_synapse_new_dir)
  secret=$(_token)
  _synapse_config "$dir" "$port" localhost "$(unlimited_limits)" "listeners:
  - {port: $port, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client], compress: false}]}
federation_domain_whitelist: []
serve_client_wellknown: true
matrix_authentication_service: {enabled: true, endpoint: 'http://127.0.0.1:$mas/', secret: '$secret'}"
  # Users come from the provider: no registration secret.
  sed -i '/^registration_shared_secret:/d' "$dir/homeserver.yaml"
  "$SYNAPSE_HOME/venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/fake-mas.py" "$mas" "http://127.0.0.1:$port" "$secret" 3 \
    > "$dir/mas.log" 2>&1 &
  SYNAPSE_PIDS+=($!)
  _synapse_launch NEXTGEN "$dir"
  NEXTGEN="http://127.0.0.1:$port $dir http://127.0.0.1:$mas"
}

# _idp_yaml ID NAME URL SECRET: one oidc_providers entry for the fake identity provider.
_idp_yaml() {
  cat <<IDP
  - idp_id: $1
    idp_name: "$2"
    discover: false
    issuer: "$3/"
    client_id: synapse
    client_secret: "$4"
    client_auth_method: client_secret_post
    scopes: [profile]
    authorization_endpoint: "$3/authorize"
    token_endpoint: "$3/token"
    userinfo_endpoint: "$3/userinfo"
    user_mapping_provider: {config: {localpart_template: "{{ user.preferred_username }}"}}
IDP
}

synapse_start() {
  local plain limited nextgen url dir mas idp_port idp_secret idp_dir
  idp_port=$(_free_port) idp_secret=$(_token)
  idp_dir=$(mktemp -d "${TMPDIR:-/tmp}/fake-idp.XXXXXX")
  SYNAPSE_DIRS+=("$idp_dir")
  "$SYNAPSE_HOME/venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/fake-idp.py" "$idp_port" "$idp_secret" \
    > "$idp_dir/idp.log" 2>&1 &
  SYNAPSE_PIDS+=($!)
  export MATRIX_TRANSPLANT_TEST_IDP="http://127.0.0.1:$idp_port"
  # The plain server: everything unlimited but logins, kept tight on purpose (the tests
  # prove HTTP 429 handling with password logins); password and single sign-on.
  _synapse_single_launch PLAIN "$(unlimited_limits | grep -v '^rc_login')
rc_login:
  address: {per_second: 0.5, burst_count: 2}
  account: {per_second: 0.5, burst_count: 2}
  failed_attempts: {per_second: 0.5, burst_count: 2}" "oidc_providers:
$(_idp_yaml fake "Fake IdP" "$MATRIX_TRANSPLANT_TEST_IDP" "$idp_secret")
$(_idp_yaml other "Other IdP" "$MATRIX_TRANSPLANT_TEST_IDP" "$idp_secret")
sso: {client_whitelist: ['http://127.0.0.1:']}"
  plain=$SINGLE
  # Invites into one user: burst 2, then 1 a second; joins: burst 3, then 1 a second.
  _synapse_single_launch LIMITED "$(unlimited_limits | grep -v '^rc_joins:\|^rc_invites')
rc_invites: {per_room: {per_second: 100, burst_count: 100}, per_user: {per_second: 1, burst_count: 2}, per_issuer: {per_second: 100, burst_count: 100}}
rc_joins: {local: {per_second: 1, burst_count: 3}, remote: {per_second: 1, burst_count: 3}}
refreshable_access_token_lifetime: 2s
refresh_token_lifetime: 30s"
  limited=$SINGLE
  _synapse_nextgen_launch
  nextgen=$NEXTGEN
  synapse_pair_launch "$(unlimited_limits)"
  read -r url dir <<< "$plain"
  _synapse_wait "$url" "" "$dir" || return 1
  _synapse_export MATRIX_TRANSPLANT_TEST "$url" "$dir"
  echo "Synapse $SYNAPSE_VERSION up at $url (files in $dir)"
  read -r url dir <<< "$limited"
  _synapse_wait "$url" "" "$dir" || return 1
  _synapse_export MATRIX_TRANSPLANT_TEST_LIMITED "$url" "$dir"
  echo "Synapse $SYNAPSE_VERSION LIMITED up at $url (files in $dir)"
  read -r url dir mas <<< "$nextgen"
  _synapse_wait "$url" "" "$dir" || return 1
  export MATRIX_TRANSPLANT_TEST_NEXTGEN_HOMESERVER="$url" MATRIX_TRANSPLANT_TEST_NEXTGEN_MAS="$mas"
  echo "Synapse $SYNAPSE_VERSION NEXTGEN up at $url (authentication by the fake MAS at $mas; files in $dir)"
  _synapse_pair_wait
}

synapse_stop() {
  local pid dir
  for pid in "${SYNAPSE_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SYNAPSE_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  for dir in "${SYNAPSE_DIRS[@]}"; do
    if [ "${1:-}" = failed ] && [ -f "$dir/homeserver.log" ]; then
      echo "---- Synapse $(cat "$dir/label" 2>/dev/null) log ($dir/homeserver.log), last 60 lines ----" >&2
      tail -n 60 "$dir/homeserver.log" >&2 2>/dev/null || true
    fi
    rm -rf "$dir"
  done
  SYNAPSE_PIDS=()
  SYNAPSE_DIRS=()
}
