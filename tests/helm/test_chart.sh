#!/usr/bin/env bash
# tests/helm/test_chart.sh: tests of the Helm chart in helm/lfsgate, without helm.
#
# Renders the chart with tests/helm/render (Go text/template + sprig + helm's own functions,
# built offline against Debian's golang-* source packages) for the default values and for
# every helm/lfsgate/ci/*-values.yaml, validates every rendered object against the
# Kubernetes schemas (npm kubernetes-models, strict about unknown fields, see check.js), and
# runs `lfsgate --check-config` on the rendered config the way the pod runs it (volumes
# recreated under a temp dir, the container's environment, stand-ins for the secrets of
# existingSecret: a generated RSA public key, a random action-token key, an Azurite
# connection string). Then focused checks: secrets never in the ConfigMap, the Azure
# connection string really arrives through the environment override, ProxyFix follows the
# ingress prefix, the checksum annotation, numbers rendered plainly, and the values the
# chart refuses.
#
# Prints "PASS name" / "FAIL name: reason" per test and ends with "N passed, N failed";
# exits non-zero if any test failed.
# Environment: LFSGATE_BIN (default <repo>/build/server/lfsgate), HELM_TEST_KEEP=1 keeps
# the work dir, HELM_TEST_FILTER (regex over test names).
# Needs: go (golang-go) with golang-github-masterminds-sprig-dev and
# golang-github-ghodss-yaml-dev, node and npm (runs `npm ci` here when node_modules is
# missing or stale), openssl; `scripts/install-deps.sh --with-tests` installs them.

# Tests are called through run_test (in a subshell that sets T); single quotes hold JS
# expressions, not shell ones.
# shellcheck disable=SC2317,SC2030,SC2031,SC2016
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CHART=$ROOT/helm/lfsgate
: "${LFSGATE_BIN:=$ROOT/build/server/lfsgate}"
EXISTING_SECRET=lfsgate-secrets # the existingSecret name the ci/ values files use

PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lfsgate-helm.XXXXXX")
cleanup() {
    if [[ ${HELM_TEST_KEEP:-0} == 1 ]]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# run_test NAME FUNC [ARGS...]: runs FUNC in a subshell under set -e with its own dir $T;
# `fail REASON` (or any failing command) ends it; its output is shown only on failure.
run_test() {
    local name=$1 rc
    shift
    if [[ -n ${HELM_TEST_FILTER:-} && ! $name =~ $HELM_TEST_FILTER ]]; then
        return 0
    fi
    local dir=$WORK/t.$name
    mkdir -p "$dir"
    ( set -eEuo pipefail; T=$dir; "$@" ) >"$dir/log" 2>&1
    rc=$?
    if [[ $rc == 0 ]]; then
        echo "PASS $name"
        PASSED=$((PASSED + 1))
    else
        local reason
        reason=$(cat "$dir/reason" 2>/dev/null || echo "exit status $rc (see below)")
        echo "FAIL $name: $reason"
        sed -e 's/^/    /' "$dir/log" | tail -n 30
        FAILED=$((FAILED + 1))
    fi
}

fail() {
    echo "$*" >"$T/reason"
    echo "$*"
    exit 1
}

finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED == 0 ]]
    exit
}

# ---------------------------------------------------------------- setup

setup() {
    command -v go >/dev/null || fail "go not found (apt-get install golang-go)"
    command -v node >/dev/null || fail "node not found"
    # GOPATH mode against Debian's packaged sources: no module download, no network.
    [[ -n ${HOME:-}${XDG_CACHE_HOME:-}${GOCACHE:-} ]] || export GOCACHE=$WORK/gocache
    (cd "$HERE/render" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' go build -o "$WORK/render" .) ||
        fail "building tests/helm/render failed"
    if [[ ! -f $HERE/node_modules/.package-lock.json ||
        $HERE/package-lock.json -nt $HERE/node_modules/.package-lock.json ]]; then
        (cd "$HERE" && npm ci --no-audit --no-fund) || fail "npm ci in tests/helm failed"
    fi
    # stand-ins for the secrets of existingSecret, as the pod would see them
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt-private.pem" 2>/dev/null
    openssl pkey -in "$WORK/jwt-private.pem" -pubout -out "$WORK/jwt-public.pem"
    openssl rand -hex 32 | tr -d '\n' >"$WORK/preauth-key"
    # Azurite's well-known development account
    printf '%s' 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1' \
        >"$WORK/azure-connection-string"
}

# render OUT [RENDER_ARGS...]: renders the chart into OUT (a helm template-style stream);
# the NOTES.txt goes to OUT.notes and each manifest to OUT.d/lfsgate/templates/.
render() {
    local out=$1
    shift
    "$WORK/render" --chart "$CHART" --name lfs --namespace lfs --notes "$out.notes" \
        --output-dir "$out.d" "$@" >"$out"
}

check() { node "$HERE/check.js" "$@"; }

# q MANIFESTS JS_EXPR...: sets the array R to the expressions' values as JSON, "" when
# undefined; `c` is the lfsgate config, `k(KIND)` the object of that kind (check.js query).
q() {
    local f=$1
    shift
    mapfile -t R < <(check query "$f" "$@")
    [[ ${#R[@]} == "$#" ]] || fail "query on $f failed: $*"
}

# pod_check MANIFESTS [-- EXTRA]: lfsgate --check-config as the pod runs it.
pod_check() {
    local m=$1
    shift
    [[ -x $LFSGATE_BIN ]] || fail "$LFSGATE_BIN is not built"
    check pod "$m" --bin "$LFSGATE_BIN" --root "$T/pod" \
        --secret "$EXISTING_SECRET/jwt-public-key.pem=@$WORK/jwt-public.pem" \
        --secret "$EXISTING_SECRET/preauth-key=@$WORK/preauth-key" \
        --secret "$EXISTING_SECRET/azure-connection-string=@$WORK/azure-connection-string" "$@"
}

# ---------------------------------------------------------------- per values file

t_render() { # CASE [VALUES_FILE]
    local args=()
    [[ -n ${2:-} ]] && args=(-f "$2")
    render "$WORK/$1.yaml" "${args[@]}" 2>"$T/err" || fail "render: $(tr '\n' ' ' <"$T/err")"
    [[ -s $WORK/$1.yaml.notes ]] || fail "NOTES.txt rendered empty"
}

t_schema() { # CASE
    [[ -s $WORK/$1.yaml ]] || fail "not rendered"
    check validate "$WORK/$1.yaml" >"$T/out" || { cat "$T/out"; fail "$(grep -m1 '^error' "$T/out")"; }
    cat "$T/out"
}

t_check_config() { # CASE
    [[ -s $WORK/$1.yaml ]] || fail "not rendered"
    pod_check "$WORK/$1.yaml" >"$T/out" 2>&1 || { cat "$T/out"; fail "lfsgate --check-config: $(tail -n 1 "$T/out")"; }
    cat "$T/out"
}

# ---------------------------------------------------------------- focused tests

AZ=$CHART/ci/azure-jwt-ingress-values.yaml

# The chart's own Secret (no existingSecret): the connection string and the public key are in
# the Secret and reach lfsgate (env override, file); neither is in the ConfigMap.
t_secrets_stay_out_of_configmap() {
    local m=$T/m.yaml cs
    cs=$(cat "$WORK/azure-connection-string")
    render "$m" -f "$AZ" --set-string existingSecret= \
        --set-string "storage.azure.connectionString=$cs" \
        --set-string "auth.jwt.publicKey=$(cat "$WORK/jwt-public.pem")"
    ! grep -q 'AccountKey' "$m.d/lfsgate/templates/configmap.yaml" || fail "the account key is in the ConfigMap"
    ! grep -q 'BEGIN PUBLIC KEY' "$m.d/lfsgate/templates/configmap.yaml" || fail "the public key is in the ConfigMap"
    q "$m" 'c.TRANSFER_ADAPTERS.basic.options.storage_options.connection_string' \
        'Buffer.from(k("Secret").data["azure-connection-string"], "base64").toString()' \
        'k("Deployment").spec.template.spec.containers[0].env.find(e => e.name === "GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_CONNECTION_STRING").valueFrom.secretKeyRef' \
        'c.AUTH_PROVIDERS[0].options.public_key_file'
    [[ ${R[0]} == '"from-secret"' ]] || fail "the ConfigMap does not hold the placeholder leaf: ${R[0]}"
    [[ ${R[1]} == "\"$cs\"" ]] || fail "the Secret does not hold the connection string"
    [[ ${R[2]} == '{"name":"lfs-lfsgate","key":"azure-connection-string"}' ]] || fail "env secretKeyRef is ${R[2]}"
    [[ ${R[3]} == '"/etc/lfsgate/secrets/jwt-public-key.pem"' ]] || fail "public_key_file is ${R[3]}"
    check validate "$m" >"$T/out" || { cat "$T/out"; fail "$(grep -m1 '^error' "$T/out")"; }
    # everything from the rendered Secret: no stand-ins
    [[ -x $LFSGATE_BIN ]] || fail "$LFSGATE_BIN is not built"
    check pod "$m" --bin "$LFSGATE_BIN" --root "$T/pod" || fail "lfsgate --check-config refused it"
}

# Without the environment variable lfsgate sees the placeholder and refuses it, naming the
# key: the variable is what supplies the connection string.
t_env_override_supplies_connection_string() {
    [[ -x $LFSGATE_BIN ]] || fail "$LFSGATE_BIN is not built"
    local m=$T/m.yaml rc=0
    render "$m" -f "$AZ"
    pod_check "$m" >"$T/ok" 2>&1 || { cat "$T/ok"; fail "refused with the variable set"; }
    env -i PATH="$PATH" "$LFSGATE_BIN" --check-config --config "$T/pod/etc/lfsgate/config/lfsgate.yaml" >"$T/out" 2>&1 || rc=$?
    cat "$T/out"
    [[ $rc == 2 ]] || fail "without the variable: exit $rc, expected 2"
    grep -q 'TRANSFER_ADAPTERS.basic.options.storage_options.connection_string' "$T/out" ||
        fail "without the variable the error does not name the connection_string key"
}

t_proxyfix_follows_ingress() {
    local m=$T/m.yaml
    render "$m" -f "$AZ"
    q "$m" 'c.MIDDLEWARE' 'k("Ingress").metadata.annotations["nginx.ingress.kubernetes.io/x-forwarded-prefix"]' \
        'k("Ingress").metadata.annotations["nginx.ingress.kubernetes.io/rewrite-target"]' \
        'k("Ingress").spec.rules[0].http.paths[0].path'
    [[ ${R[0]} == '[{"class":"werkzeug.middleware.proxy_fix:ProxyFix","kwargs":{"x_host":1,"x_port":1,"x_prefix":1}}]' ]] ||
        fail "prefix: MIDDLEWARE is ${R[0]}"
    [[ ${R[1]} == '"/giftless"' ]] || fail "x-forwarded-prefix annotation is ${R[1]}"
    [[ ${R[2]} == '"/$2"' ]] || fail "rewrite-target annotation is ${R[2]}"
    [[ ${R[3]} == '"/giftless(/|$)(.*)"' ]] || fail "ingress path is ${R[3]}"
    # a trailing slash in the prefix is the same prefix
    render "$m" -f "$AZ" --set-string ingress.pathPrefix=/giftless/
    q "$m" 'k("Ingress").spec.rules[0].http.paths[0].path' 'c.MIDDLEWARE[0].kwargs.x_prefix'
    [[ ${R[0]} == '"/giftless(/|$)(.*)"' && ${R[1]} == 1 ]] || fail "prefix /giftless/: ${R[*]}"
    # ingress at the root: ProxyFix without x_prefix, no rewrite
    render "$m" -f "$AZ" --set-string ingress.pathPrefix=
    q "$m" 'c.MIDDLEWARE[0].kwargs' 'k("Ingress").metadata.annotations["nginx.ingress.kubernetes.io/rewrite-target"]' \
        'k("Ingress").spec.rules[0].http.paths[0]'
    [[ ${R[0]} == '{"x_host":1,"x_port":1}' ]] || fail "root: kwargs ${R[0]}"
    [[ ${R[1]} == '' ]] || fail "root: rewrite-target ${R[1]}"
    [[ ${R[2]} == '{"path":"/","pathType":"Prefix","backend":{"service":{"name":"lfs-lfsgate","port":{"name":"http"}}}}' ]] || fail "root: path ${R[2]}"
    # no ingress: no middleware (X-Forwarded-* ignored)
    render "$m"
    q "$m" 'c.MIDDLEWARE' 'k("Ingress")'
    [[ ${R[0]} == '' ]] || fail "default: MIDDLEWARE is ${R[0]}"
    [[ ${R[1]} == '' ]] || fail "default: an Ingress is rendered"
}

t_checksum_annotation() {
    local a=$T/a.yaml b=$T/b.yaml c=$T/c.yaml expr='k("Deployment").spec.template.metadata.annotations["checksum/config"]' sa sb sc
    render "$a"
    render "$b"
    render "$c" --set-string server.maxUploadSize=1G
    q "$a" "$expr"; sa=${R[0]}
    q "$b" "$expr"; sb=${R[0]}
    q "$c" "$expr"; sc=${R[0]}
    [[ $sa == "\"$(sha256sum <"$a.d/lfsgate/templates/configmap.yaml" | cut -d' ' -f1)\"" ]] ||
        fail "checksum/config is not the sha256 of the rendered ConfigMap"
    [[ $sa == "$sb" ]] || fail "same values, different checksums (a random value in the ConfigMap?)"
    [[ $sa != "$sc" ]] || fail "a config change does not change the checksum"
}

# helm values are float64: big numbers must not come out as 5.36870912e+09
t_numbers_render_plainly() {
    local m=$T/m.yaml
    render "$m" --set server.maxUploadSize=5368709120 --set server.requestTimeout=86400 --set server.port=18080 \
        --set server.receiveBudget=3221225472 --set server.minReceiveRate=2K --set server.receiveGrace=30
    q "$m" 'c.SERVER.max_upload_size' 'c.SERVER.listen' 'k("Deployment").spec.template.spec.containers[0].ports[0].containerPort' \
        'c.SERVER.receive_budget' 'c.SERVER.min_receive_rate' 'c.SERVER.receive_grace'
    [[ ${R[0]} == 5368709120 ]] || fail "max_upload_size ${R[0]}"
    [[ ${R[1]} == '"0.0.0.0:18080"' ]] || fail "listen ${R[1]}"
    [[ ${R[2]} == 18080 ]] || fail "containerPort ${R[2]}"
    [[ ${R[3]} == 3221225472 && ${R[4]} == '"2K"' && ${R[5]} == 30 ]] || fail "receive guard settings ${R[*]:3}"
    ! grep -n 'e+0' "$m" || fail "a number in exponent form"
    check validate "$m" >"$T/out" || { cat "$T/out"; fail "$(grep -m1 '^error' "$T/out")"; }
    pod_check "$m" || fail "lfsgate --check-config refused it"
}

# server.maxConnections reaches SERVER.max_connections; null leaves lfsgate's default.
t_max_connections() {
    local m=$T/mc.yaml d=$T/mcd.yaml
    render "$m" --set server.maxConnections=2000
    render "$d"
    q "$m" 'c.SERVER.max_connections'
    [[ ${R[0]} == 2000 ]] || fail "max_connections ${R[0]}"
    q "$d" '"max_connections" in c.SERVER'
    [[ ${R[0]} == false ]] || fail "max_connections set without a value: ${R[0]}"
    pod_check "$m" || fail "lfsgate --check-config refused it"
}

# server.logGrants reaches SERVER.log_grants (default off: one activity line per batch).
t_log_grants() {
    local m=$T/lg.yaml d=$T/lgd.yaml
    render "$m" --set server.logGrants=true
    render "$d"
    q "$m" 'c.SERVER.log_grants'
    [[ ${R[0]} == true ]] || fail "log_grants ${R[0]}"
    q "$d" 'c.SERVER.log_grants'
    [[ ${R[0]} == false ]] || fail "log_grants by default: ${R[0]}"
    pod_check "$m" || fail "lfsgate --check-config refused it"
}

# The harness is not vacuous: a config lfsgate refuses is reported as refused.
t_bad_config_is_caught() {
    local m=$T/m.yaml rc=0
    render "$m" --set server.threads=999
    pod_check "$m" >"$T/out" 2>&1 || rc=$?
    cat "$T/out"
    [[ $rc == 2 ]] || fail "exit $rc, expected 2"
    grep -q 'SERVER.threads' "$T/out" || fail "the error does not name SERVER.threads"
}

# refused VALUES_ARGS... -- MESSAGE_REGEX: rendering must fail with the message.
refused() {
    local args=() m=$T/m.yaml
    while [[ $1 != -- ]]; do args+=("$1"); shift; done
    shift
    if render "$m" "${args[@]}" 2>"$T/err"; then fail "rendered: ${args[*]}"; fi
    cat "$T/err"
    grep -Eq "$1" "$T/err" || fail "error does not match /$1/: $(tr '\n' ' ' <"$T/err")"
}

t_refusals() {
    refused --set replicaCount=3 -- 'ReadWriteMany'
    refused --set autoscaling.enabled=true -- 'ReadWriteMany'
    refused --set terminationGracePeriodSeconds=20 -- 'terminationGracePeriodSeconds \(20\) must be larger than .* \(35\)'
    refused --set auth.jwt.enabled=true -- 'auth.jwt.publicKey is required'
    refused --set auth.jwt.enabled=true --set-string auth.jwt.algorithm=HS256 -- 'auth.jwt.secret is required'
    refused --set-string auth.anonymous= -- 'nobody gets in'
    refused --set-string auth.anonymous=yes -- 'auth.anonymous: expected'
    refused --set-string storage.type=gcs -- 'storage.type: expected local or azure'
    refused -f "$AZ" --set-string existingSecret= -- 'storage.azure.connectionString is required'
    refused -f "$AZ" --set-string storage.azure.containerName= -- 'containerName is required'
    refused --set ingress.enabled=true -- 'ingress.hosts'
    refused --set ingress.enabled=true --set-string ingress.pathPrefix=giftless --set 'ingress.hosts=[x]' -- 'must start with'
    # and the shapes that are fine
    render "$T/ok.yaml" --set replicaCount=3 --set storage.local.persistence.enabled=true \
        --set-string storage.local.persistence.existingClaim=shared-rwx
    render "$T/ok.yaml" --set terminationGracePeriodSeconds=36
}

t_variants() {
    # metrics on the main port, no PDB, no service account, HPA on memory too, tmpfs spool,
    # no shutdown_timeout key, no preStop hook
    local m=$T/m.yaml
    render "$m" -f "$AZ" --set metrics.port=0 --set podDisruptionBudget.enabled=false \
        --set serviceAccount.create=false --set autoscaling.targetMemoryUtilizationPercentage=80 \
        --set-string spool.medium=Memory --set server.shutdownTimeout=null --set preStopSleepSeconds=0
    q "$m" 'k("ServiceMonitor").spec.endpoints[0].port' 'c.SERVER.metrics_listen' 'c.SERVER.shutdown_timeout' \
        'k("PodDisruptionBudget")' 'k("ServiceAccount")' 'k("Deployment").spec.template.spec.serviceAccountName' \
        'k("HorizontalPodAutoscaler").spec.metrics.length' 'k("Deployment").spec.template.spec.terminationGracePeriodSeconds'
    [[ ${R[0]} == '"http"' ]] || fail "ServiceMonitor port ${R[0]}"
    [[ ${R[1]} == '' ]] || fail "metrics_listen ${R[1]}"
    [[ ${R[2]} == '' ]] || fail "shutdown_timeout ${R[2]}"
    [[ ${R[3]} == '' ]] || fail "PDB rendered"
    [[ ${R[4]} == '' && ${R[5]} == '"default"' ]] || fail "service account ${R[4]} ${R[5]}"
    [[ ${R[6]} == 2 ]] || fail "HPA metrics ${R[6]}"
    [[ ${R[7]} == 10 ]] || fail "terminationGracePeriodSeconds ${R[7]}"
    check validate "$m" >"$T/out" || { cat "$T/out"; fail "$(grep -m1 '^error' "$T/out")"; }
    pod_check "$m" || fail "lfsgate --check-config refused it"
}

# ---------------------------------------------------------------- main

run_test setup setup
if [[ $FAILED != 0 ]]; then
    finish
fi

cases=(default)
declare -A values=([default]="")
for f in "$CHART"/ci/*-values.yaml; do
    [[ -e $f ]] || continue
    n=$(basename "$f" -values.yaml)
    cases+=("$n")
    values[$n]=$f
done
for n in "${cases[@]}"; do
    run_test "render_$n" t_render "$n" "${values[$n]}"
    run_test "schema_$n" t_schema "$n"
    run_test "check_config_$n" t_check_config "$n"
done
run_test secrets_stay_out_of_configmap t_secrets_stay_out_of_configmap
run_test env_override_supplies_connection_string t_env_override_supplies_connection_string
run_test proxyfix_follows_ingress t_proxyfix_follows_ingress
run_test checksum_annotation t_checksum_annotation
run_test numbers_render_plainly t_numbers_render_plainly
run_test max_connections t_max_connections
run_test log_grants t_log_grants
run_test bad_config_is_caught t_bad_config_is_caught
run_test refusals t_refusals
run_test variants t_variants
finish
