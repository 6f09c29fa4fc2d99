{{/*
Names and labels.
*/}}
{{- define "lfsgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lfsgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "lfsgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lfsgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lfsgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lfsgate.labels" -}}
helm.sh/chart: {{ include "lfsgate.chart" . }}
{{ include "lfsgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "lfsgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lfsgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lfsgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Paths inside the container. The config file sits in a directory mount (not subPath) so that
ConfigMap updates reach the pod.
*/}}
{{- define "lfsgate.configDir" -}}/etc/lfsgate/config{{- end }}
{{- define "lfsgate.configFile" -}}/etc/lfsgate/config/lfsgate.yaml{{- end }}
{{- define "lfsgate.secretsDir" -}}/etc/lfsgate/secrets{{- end }}
{{- define "lfsgate.spoolDir" -}}/var/spool/lfsgate{{- end }}

{{/*
The environment variable that carries the Azure connection string. lfsgate (config/env.c)
overrides an existing leaf from GIFTLESS_CONFIG_ + the key path upper-cased and joined with
"_" (giftless's documented spelling), or from GIFTLESS_ + the exact-case path (giftless's
code); the documented spelling wins when both are set, so nothing else in the environment
can shadow this one.
*/}}
{{- define "lfsgate.azureConnectionStringEnv" -}}GIFTLESS_CONFIG_TRANSFER_ADAPTERS_BASIC_OPTIONS_STORAGE_OPTIONS_CONNECTION_STRING{{- end }}
{{/* The leaf value in the ConfigMap that the variable above replaces. */}}
{{- define "lfsgate.secretPlaceholder" -}}from-secret{{- end }}

{{/* "true" when the JWT provider uses a shared secret (HS*) rather than a public key. */}}
{{- define "lfsgate.jwtIsHmac" -}}
{{- if hasPrefix "HS" (upper .Values.auth.jwt.algorithm) }}true{{- end }}
{{- end }}

{{/* The ingress path prefix without a trailing "/", "" for the root. */}}
{{- define "lfsgate.pathPrefix" -}}
{{- $p := trimSuffix "/" (.Values.ingress.pathPrefix | default "" | toString) }}
{{- if and $p (not (hasPrefix "/" $p)) }}
{{- fail (printf "ingress.pathPrefix: must start with \"/\", got %q" .Values.ingress.pathPrefix) }}
{{- end }}
{{- $p }}
{{- end }}

{{/* "true" when the ProxyFix middleware is rendered. */}}
{{- define "lfsgate.proxyFixEnabled" -}}
{{- $e := .Values.proxyFix.enabled }}
{{- if kindIs "string" $e }}
{{- if eq $e "auto" }}{{- if .Values.ingress.enabled }}true{{- end }}
{{- else }}{{- fail (printf "proxyFix.enabled: expected auto, true or false, got %q" $e) }}
{{- end }}
{{- else if $e }}true
{{- end }}
{{- end }}

{{/* The metrics port, or "" when /metrics is served on the main port. */}}
{{- define "lfsgate.metricsPort" -}}
{{- if and .Values.metrics.port (ne (int .Values.metrics.port) 0) }}{{ int .Values.metrics.port }}{{- end }}
{{- end }}

{{/* Seconds: a value the chart has to print as a plain integer (values are float64). */}}
{{- define "lfsgate.terminationGracePeriodSeconds" -}}
{{- $min := int .Values.preStopSleepSeconds }}
{{- if not (kindIs "invalid" .Values.server.shutdownTimeout) }}
{{- $min = add $min (int .Values.server.shutdownTimeout) }}
{{- end }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $min 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $min }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than preStopSleepSeconds + server.shutdownTimeout (%d), or the kubelet kills lfsgate before it has drained" (int .Values.terminationGracePeriodSeconds) $min) }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The Secret keys the configuration needs, as a YAML list of {key, value, file}: value is what
the chart's own Secret holds (ignored with existingSecret); file is true when the key is
mounted as a file under lfsgate.secretsDir, false when it is passed in the environment.
*/}}
{{- define "lfsgate.secretItems" -}}
{{- $v := .Values }}
{{- $items := list }}
{{- if eq $v.storage.type "azure" }}
{{- $items = append $items (dict "key" $v.secretKeys.azureConnectionString "value" $v.storage.azure.connectionString "file" false "what" "storage.azure.connectionString") }}
{{- end }}
{{- if $v.auth.jwt.enabled }}
{{- if include "lfsgate.jwtIsHmac" . }}
{{- $items = append $items (dict "key" $v.secretKeys.jwtSecret "value" $v.auth.jwt.secret "file" true "what" "auth.jwt.secret") }}
{{- else }}
{{- $items = append $items (dict "key" $v.secretKeys.jwtPublicKey "value" $v.auth.jwt.publicKey "file" true "what" "auth.jwt.publicKey") }}
{{- end }}
{{- end }}
{{- if $v.preAuthorizedActions.enabled }}
{{- $items = append $items (dict "key" $v.secretKeys.preauthKey "value" $v.preAuthorizedActions.key "file" true "what" "preAuthorizedActions.key" "generate" true) }}
{{- end }}
{{- toYaml $items }}
{{- end }}

{{/* Checks on values that would otherwise give a broken install. */}}
{{- define "lfsgate.validate" -}}
{{- $v := .Values }}
{{- if not (has $v.storage.type (list "local" "azure")) }}
{{- fail (printf "storage.type: expected local or azure, got %q" $v.storage.type) }}
{{- end }}
{{- if and (not $v.auth.jwt.enabled) (not $v.auth.anonymous) }}
{{- fail "auth: enable auth.jwt or set auth.anonymous (read_only or read_write); with neither nobody gets in" }}
{{- end }}
{{- if and $v.auth.anonymous (not (has $v.auth.anonymous (list "read_only" "read_write"))) }}
{{- fail (printf "auth.anonymous: expected \"\", read_only or read_write, got %q" $v.auth.anonymous) }}
{{- end }}
{{- if eq $v.storage.type "azure" }}
{{- if not $v.storage.azure.containerName }}
{{- fail "storage.azure.containerName is required with storage.type azure" }}
{{- end }}
{{- end }}
{{- if not $v.existingSecret }}
{{- range (include "lfsgate.secretItems" . | fromYamlArray) }}
{{- if and (not .value) (not .generate) }}
{{- fail (printf "%s is required (or set existingSecret to a Secret with the key %q)" .what .key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $v.storage.type "local" }}
{{- $p := $v.storage.local.persistence }}
{{- $several := or $v.autoscaling.enabled (gt (int $v.replicaCount) 1) }}
{{- $shared := and $p.enabled (or $p.existingClaim (has "ReadWriteMany" $p.accessModes)) }}
{{- if and $several (not $shared) }}
{{- fail "storage.type local with more than one replica (or autoscaling) needs storage.local.persistence with a ReadWriteMany volume (or an existingClaim that is one): every replica must see every object" }}
{{- end }}
{{- end }}
{{- /* these fail on bad values when evaluated */}}
{{- $_ := include "lfsgate.terminationGracePeriodSeconds" . }}
{{- $_ := include "lfsgate.pathPrefix" . }}
{{- $_ := include "lfsgate.proxyFixEnabled" . }}
{{- end }}

{{/*
lfsgate's configuration in giftless's format, as a YAML document.
*/}}
{{- define "lfsgate.config" -}}
{{- $v := .Values }}
{{- $secrets := include "lfsgate.secretsDir" . }}

{{- /* AUTH_PROVIDERS */}}
{{- $auth := list }}
{{- if $v.auth.jwt.enabled }}
{{- $j := $v.auth.jwt }}
{{- $opts := dict "algorithm" (upper $j.algorithm) "leeway" (int $j.leeway) }}
{{- if include "lfsgate.jwtIsHmac" . }}
{{- $_ := set $opts "private_key_file" (printf "%s/%s" $secrets $v.secretKeys.jwtSecret) }}
{{- else }}
{{- $_ := set $opts "public_key_file" (printf "%s/%s" $secrets $v.secretKeys.jwtPublicKey) }}
{{- end }}
{{- with $j.keyId }}{{- $_ := set $opts "key_id" (toString .) }}{{- end }}
{{- with $j.issuer }}{{- $_ := set $opts "issuer" (toString .) }}{{- end }}
{{- with $j.audience }}{{- $_ := set $opts "audience" . }}{{- end }}
{{- if not (kindIs "invalid" $j.basicAuthUser) }}
{{- $_ := set $opts "basic_auth_user" (toString $j.basicAuthUser) }}
{{- end }}
{{- $auth = append $auth (dict "factory" "giftless.auth.jwt:factory" "options" $opts) }}
{{- end }}
{{- with $v.auth.anonymous }}
{{- $auth = append $auth (printf "giftless.auth.allow_anon:%s" .) }}
{{- end }}
{{- $cfg := dict "AUTH_PROVIDERS" $auth }}

{{- /* PRE_AUTHORIZED_ACTION_PROVIDER */}}
{{- if $v.preAuthorizedActions.enabled }}
{{- $pa := $v.preAuthorizedActions }}
{{- $_ := set $cfg "PRE_AUTHORIZED_ACTION_PROVIDER" (dict "factory" "giftless.auth.jwt:factory" "options" (dict "algorithm" (upper $pa.algorithm) "private_key_file" (printf "%s/%s" $secrets $v.secretKeys.preauthKey) "default_lifetime" (int $pa.lifetime))) }}
{{- else }}
{{- $_ := set $cfg "PRE_AUTHORIZED_ACTION_PROVIDER" nil }}
{{- end }}

{{- /* TRANSFER_ADAPTERS */}}
{{- $basic := dict }}
{{- if eq $v.storage.type "azure" }}
{{- $so := dict "connection_string" (include "lfsgate.secretPlaceholder" .) "container_name" (toString $v.storage.azure.containerName) }}
{{- with $v.storage.azure.pathPrefix }}{{- $_ := set $so "path_prefix" (toString .) }}{{- end }}
{{- $basic = dict "factory" "giftless.transfer.basic_external:factory" "options" (dict "storage_class" "giftless.storage.azure:AzureBlobsStorage" "storage_options" $so "action_lifetime" (int $v.storage.actionLifetime)) }}
{{- else }}
{{- $basic = dict "factory" "giftless.transfer.basic_streaming:factory" "options" (dict "storage_class" "giftless.storage.local_storage:LocalStorage" "storage_options" (dict "path" $v.storage.local.path) "action_lifetime" (int $v.storage.actionLifetime)) }}
{{- end }}
{{- $_ := set $cfg "TRANSFER_ADAPTERS" (dict "basic" $basic) }}

{{- /* MIDDLEWARE */}}
{{- if include "lfsgate.proxyFixEnabled" . }}
{{- $kw := dict "x_host" 1 "x_port" 1 }}
{{- if include "lfsgate.pathPrefix" . }}{{- $_ := set $kw "x_prefix" 1 }}{{- end }}
{{- range $k, $n := $v.proxyFix.kwargs }}{{- $_ := set $kw $k (int $n) }}{{- end }}
{{- $_ := set $cfg "MIDDLEWARE" (list (dict "class" "werkzeug.middleware.proxy_fix:ProxyFix" "kwargs" $kw)) }}
{{- end }}

{{- $_ := set $cfg "LEGACY_ENDPOINTS" (not (not $v.server.legacyEndpoints)) }}
{{- $_ := set $cfg "DEBUG" (not (not $v.server.debug)) }}

{{- /* SERVER */}}
{{- $s := $v.server }}
{{- $mus := $s.maxUploadSize }}{{- if kindIs "float64" $mus }}{{- $mus = int64 $mus }}{{- end }}
{{- $mbb := $s.maxBatchBody }}{{- if kindIs "float64" $mbb }}{{- $mbb = int64 $mbb }}{{- end }}
{{- $server := dict "listen" (printf "0.0.0.0:%d" (int $s.port)) "threads" (int $s.threads) "max_upload_size" $mus "spool_dir" (include "lfsgate.spoolDir" .) "request_timeout" (int $s.requestTimeout) "max_batch_objects" (int $s.maxBatchObjects) "max_batch_body" $mbb "trust_forwarded" (int $s.trustForwarded) "access_log" (not (not $s.accessLog)) "activity_log" (not (not $s.activityLog)) "log_grants" (not (not $s.logGrants)) }}
{{- if not (kindIs "invalid" $s.shutdownTimeout) }}
{{- $_ := set $server "shutdown_timeout" (int $s.shutdownTimeout) }}
{{- end }}
{{- /* The receive guard: sizes as strings ("2G") or numbers */}}
{{- range $key, $val := dict "receive_budget" $s.receiveBudget "min_receive_rate" $s.minReceiveRate "receive_grace" $s.receiveGrace }}
{{- if not (kindIs "invalid" $val) }}
{{- $_ := set $server $key (ternary (int64 $val) $val (kindIs "float64" $val)) }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" $s.maxConnections) }}
{{- $_ := set $server "max_connections" (int $s.maxConnections) }}
{{- end }}
{{- with include "lfsgate.metricsPort" . }}
{{- $_ := set $server "metrics_listen" (printf "0.0.0.0:%s" .) }}
{{- end }}
{{- $_ := set $cfg "SERVER" $server }}

{{- with $v.cors }}
{{- $_ := set $cfg "CORS" (deepCopy .) }}
{{- end }}
{{- with $v.extraConfig }}
{{- $cfg = mergeOverwrite $cfg (deepCopy .) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
