# The real client of the tests, installed like Synapse (source this file, then call
# real_client_install): Element Web's engine from the npm registry at the versions
# package-lock.json pins, and Element's own key-file code from the matrix-react-sdk
# package, checked against its SHA-256. Everything lands in gitignored folders here.
REAL_CLIENT_DIR=${REAL_CLIENT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
ELEMENT_PACKAGE=matrix-react-sdk@3.114.0
ELEMENT_EXPORT_SHA256=ec16c8335740924904f857454bdc1c56a9881343cb062d19d8ddb2f27d1b85a7

real_client_install() {
  if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    echo "the real-client tests need Node.js 20 and npm, and they are not installed" >&2
    return 1
  fi
  (cd "$REAL_CLIENT_DIR" && npm ci --no-audit --no-fund --loglevel=error > /dev/null)
  local file="$REAL_CLIENT_DIR/.element/MegolmExportEncryption.cjs"
  if [ -f "$file" ] && echo "$ELEMENT_EXPORT_SHA256  $file" | sha256sum --check --status; then
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$ELEMENT_PACKAGE" > /dev/null \
    && tar -xzf ./*.tgz package/lib/utils/MegolmExportEncryption.js)
  if ! echo "$ELEMENT_EXPORT_SHA256  $tmp/package/lib/utils/MegolmExportEncryption.js" | sha256sum --check --status; then
    echo "Element's key-file code from $ELEMENT_PACKAGE is not the file the tests were written against" >&2
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$REAL_CLIENT_DIR/.element"
  mv "$tmp/package/lib/utils/MegolmExportEncryption.js" "$file"
  rm -rf "$tmp"
}
