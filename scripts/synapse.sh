# A real Synapse on loopback for the tests. Source this file, then:
#   synapse_install   # venv under .synapse/ (pinned version), reused when present
#   synapse_start     # fresh config + SQLite database on a free port; exports
#                     # MATRIX_TRANSPLANT_TEST_HOMESERVER and MATRIX_TRANSPLANT_TEST_REGISTRATION_SECRET
#   synapse_stop      # SIGTERM; prints the log if $1 is "failed"
SYNAPSE_VERSION=1.163.2
SYNAPSE_HOME=${SYNAPSE_HOME:-$(pwd)/.synapse}

synapse_install() {
  local venv="$SYNAPSE_HOME/venv"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import synapse, sys; sys.exit(not synapse.__version__.startswith('$SYNAPSE_VERSION'))" 2>/dev/null; then
    return 0
  fi
  echo "installing Synapse $SYNAPSE_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$SYNAPSE_HOME"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
}

synapse_start() {
  local venv="$SYNAPSE_HOME/venv"
  SYNAPSE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/synapse.XXXXXX")
  local port secret
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  secret=$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))')
  cat > "$SYNAPSE_DIR/log.yaml" <<LOG
version: 1
formatters:
  plain: {format: '%(asctime)s %(levelname)s %(name)s %(message)s'}
handlers:
  file: {class: logging.FileHandler, filename: $SYNAPSE_DIR/homeserver.log, formatter: plain}
root: {level: INFO, handlers: [file]}
disable_existing_loggers: false
LOG
  local big='{per_second: 10000, burst_count: 100000}'
  cat > "$SYNAPSE_DIR/homeserver.yaml" <<CONF
server_name: localhost
public_baseurl: http://127.0.0.1:$port/
pid_file: $SYNAPSE_DIR/homeserver.pid
listeners:
  - {port: $port, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client], compress: false}]}
database: {name: sqlite3, args: {database: $SYNAPSE_DIR/homeserver.db}}
media_store_path: $SYNAPSE_DIR/media
signing_key_path: $SYNAPSE_DIR/signing.key
log_config: $SYNAPSE_DIR/log.yaml
registration_shared_secret: "$secret"
macaroon_secret_key: "$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))')"
form_secret: "$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))')"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
presence: {enabled: false}
bcrypt_rounds: 4
rc_message: $big
rc_registration: $big
rc_joins: {local: $big, remote: $big}
rc_joins_per_room: $big
rc_invites: {per_room: $big, per_user: $big, per_issuer: $big}
rc_admin_redaction: $big
rc_3pid_validation: $big
rc_room_creation: $big
rc_presence: {per_user: $big}
rc_delayed_event_mgmt: $big
rc_reports: $big
# Kept tight on purpose: the tests prove HTTP 429 handling with password logins.
rc_login:
  address: {per_second: 0.5, burst_count: 2}
  account: {per_second: 0.5, burst_count: 2}
  failed_attempts: {per_second: 0.5, burst_count: 2}
CONF
  "$venv/bin/python" -m synapse.app.homeserver -c "$SYNAPSE_DIR/homeserver.yaml" > "$SYNAPSE_DIR/stdout.log" 2>&1 &
  SYNAPSE_PID=$!
  local url="http://127.0.0.1:$port"
  for _ in $(seq 1 120); do
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$url/_matrix/client/versions', timeout=1)" 2>/dev/null; then
      export MATRIX_TRANSPLANT_TEST_HOMESERVER="$url"
      export MATRIX_TRANSPLANT_TEST_REGISTRATION_SECRET="$secret"
      echo "Synapse $SYNAPSE_VERSION up at $url (pid $SYNAPSE_PID, files in $SYNAPSE_DIR)"
      return 0
    fi
    if ! kill -0 "$SYNAPSE_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "Synapse did not start:" >&2
  cat "$SYNAPSE_DIR/stdout.log" "$SYNAPSE_DIR/homeserver.log" >&2 2>/dev/null || true
  return 1
}

synapse_stop() {
  if [ -n "${SYNAPSE_PID:-}" ] && kill -0 "$SYNAPSE_PID" 2>/dev/null; then
    kill -TERM "$SYNAPSE_PID"
    wait "$SYNAPSE_PID" 2>/dev/null || true
  fi
  if [ "${1:-}" = failed ] && [ -n "${SYNAPSE_DIR:-}" ]; then
    echo "---- Synapse log ($SYNAPSE_DIR/homeserver.log), last 80 lines ----" >&2
    tail -n 80 "$SYNAPSE_DIR/homeserver.log" >&2 2>/dev/null || true
  fi
  [ -n "${SYNAPSE_DIR:-}" ] && rm -rf "$SYNAPSE_DIR"
  SYNAPSE_PID=
}
