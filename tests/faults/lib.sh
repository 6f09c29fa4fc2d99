# shellcheck shell=bash
# tests/faults/lib.sh: what the fault-injection tests (tests/faults/test_*.sh) share beyond
# tests/e2e/lib.sh, which it sources.
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONTAINER=lfs

# faults_azure_config FILE CONNECTION_STRING [STORAGE_OPTIONS_EXTRA]: basic_streaming and
# multipart-basic (1 MiB parts) over one Azure container, anonymous read-write.
faults_azure_config() {
    local opts="{connection_string: \"$2\", container_name: $CONTAINER${3:+, $3}}"
    store_config "$1" basic_streaming "      storage_class: giftless.storage.azure:AzureBlobsStorage
      storage_options: $opts
  multipart-basic:
    factory: giftless.transfer.multipart:factory
    options:
      storage_class: giftless.storage.azure:AzureBlobsStorage
      max_part_size: 1M
      storage_options: $opts"
}

# Azurite comes from tests/e2e/node_modules, installed by the project's own files when missing
# (as tests/e2e/test_azure.sh does).
if [[ ! -x $AZURITE_BIN ]] && command -v npm >/dev/null 2>&1; then
    (cd "$E2E_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 || true
fi

# figures NAME TEXT: a line of measured figures for the README's table: in the test log, and
# appended to $FAULTS_REPORT when set.
figures() {
    echo "FIGURES $1: $2" >&2
    [[ -z ${FAULTS_REPORT:-} ]] || echo "$1: $2" >>"$FAULTS_REPORT"
}
