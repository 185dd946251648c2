{{/* Names and labels. */}}
{{- define "osam.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "osam.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "osam.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "osam.selectorLabels" -}}
app.kubernetes.io/name: {{ include "osam.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "osam.labels" -}}
helm.sh/chart: {{ include "osam.chart" . }}
{{ include "osam.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "osam.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "osam.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "osam.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where secrets and files are mounted; the config points at these paths. */}}
{{- define "osam.secretsDir" -}}/var/run/secrets/osam{{- end -}}
{{- define "osam.stateDir" -}}/var/lib/osam{{- end -}}
{{- define "osam.bucketsFile" -}}/etc/osam/buckets/buckets.csv{{- end -}}
{{- define "osam.usersFile" -}}/etc/osam/users/users.yaml{{- end -}}

{{/* Whether any secret file is mounted. */}}
{{- define "osam.hasSecretFiles" -}}
{{- if or .Values.keycloak.clientSecret.existingSecret .Values.s3.credentials.existingSecret .Values.iam.credentials.existingSecret .Values.iam.sealingKey.existingSecret -}}
true
{{- end -}}
{{- end -}}

{{/*
Refuses values that would deploy a broken or unsafe osam, with a message naming the value.
*/}}
{{- define "osam.validate" -}}
{{- $config := .Values.config | default dict -}}
{{- $accounts := $config.accounts | default dict -}}
{{- $directory := $config.directory | default dict -}}
{{- $provider := $accounts.provider | default "embedded" -}}
{{- if and (eq $provider "embedded") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) -}}
{{- fail "config.accounts.provider \"embedded\" keeps accounts in each pod's own state directory: use replicaCount 1 without autoscaling, or the \"iam\" provider" -}}
{{- end -}}
{{- if and (eq ($directory.kind | default "static") "keycloak") (not .Values.keycloak.clientSecret.existingSecret) -}}
{{- fail "config.directory.kind \"keycloak\" needs keycloak.clientSecret.existingSecret (a Secret holding the osam client's secret)" -}}
{{- end -}}
{{- if and (eq $provider "iam") (not .Values.iam.sealingKey.existingSecret) -}}
{{- fail "config.accounts.provider \"iam\" needs iam.sealingKey.existingSecret (the master key sealing IAM secret keys)" -}}
{{- end -}}
{{- if and (not .Values.leaderElection.enabled) (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) -}}
{{- fail "several replicas need leaderElection.enabled, or they would all run account syncs at once" -}}
{{- end -}}
{{- if and (not .Values.leaderElection.enabled) (($accounts.leader_election | default dict).enabled) -}}
{{- fail "config.accounts.leader_election.enabled needs leaderElection.enabled (the Lease RBAC and the pod's service-account token)" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (eq (toString .Values.podDisruptionBudget.minAvailable) "") (eq (toString .Values.podDisruptionBudget.maxUnavailable) "") -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (ne (toString .Values.podDisruptionBudget.minAvailable) "") (ne (toString .Values.podDisruptionBudget.maxUnavailable) "") -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
{{- end -}}

{{/*
The sync's Lease: one per release, so two releases in a namespace never share it.
*/}}
{{- define "osam.leaseName" -}}
{{- printf "%s-sync" (include "osam.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
osam.toml: values.config with the keys the deployment decides set over it.
*/}}
{{- define "osam.configToml" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $secrets := include "osam.secretsDir" . -}}
{{- $derived := dict "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.grpc)) "state_dir" (include "osam.stateDir" .) "shutdown_drain_delay_seconds" (int .Values.drainDelaySeconds)) -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $derived "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.metrics))) -}}
{{- end -}}
{{- $directory := dict -}}
{{- if .Values.keycloak.clientSecret.existingSecret -}}
{{- $_ := set $directory "keycloak" (dict "client_secret_file" (printf "%s/keycloak-client-secret" $secrets)) -}}
{{- end -}}
{{- if .Values.staticDirectory.usersYaml -}}
{{- $_ := set $directory "file" (include "osam.usersFile" .) -}}
{{- end -}}
{{- if $directory }}{{ $_ := set $derived "directory" $directory }}{{ end -}}
{{- $storage := dict -}}
{{- if .Values.s3.credentials.existingSecret -}}
{{- $_ := set $storage "s3" (dict "secret_access_key_file" (printf "%s/s3-secret-access-key" $secrets)) -}}
{{- end -}}
{{- if .Values.bucketConfig.csv -}}
{{- $_ := set $storage "bucket_config_source" "file" -}}
{{- $_ := set $storage "bucket_config_file" (include "osam.bucketsFile" .) -}}
{{- end -}}
{{- if $storage }}{{ $_ := set $derived "storage" $storage }}{{ end -}}
{{- $iam := dict -}}
{{- if .Values.iam.credentials.existingSecret -}}
{{- $_ := set $iam "secret_access_key_file" (printf "%s/iam-secret-access-key" $secrets) -}}
{{- end -}}
{{- if .Values.iam.sealingKey.existingSecret -}}
{{- $_ := set $iam "sealing_key_file" (printf "%s/iam-sealing-key" $secrets) -}}
{{- end -}}
{{- $accountsDerived := dict -}}
{{- if $iam }}{{ $_ := set $accountsDerived "iam" $iam }}{{ end -}}
{{- /* Several replicas share the iam provider; the Lease makes one of them run syncs. */ -}}
{{- if and .Values.leaderElection.enabled (eq ((.Values.config | default dict).accounts | default dict).provider "iam") -}}
{{- $_ := set $accountsDerived "leader_election" (dict "enabled" true "lease_name" (include "osam.leaseName" .)) -}}
{{- end -}}
{{- if $accountsDerived }}{{ $_ := set $derived "accounts" $accountsDerived }}{{ end -}}
{{- $merged := mergeOverwrite $config $derived -}}
{{- include "osam.tomlTable" (dict "table" $merged "path" list) -}}
{{- end -}}

{{/*
A TOML table and its sub-tables. Helm reads every number in values as a float, which toToml would
write as 20.0 where osam expects an integer; whole numbers are written as integers here (osam's
float keys accept them too). Null values are left out; lists hold scalars only.
*/}}
{{- define "osam.tomlTable" -}}
{{- $path := .path -}}
{{- range $key, $value := .table -}}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) }}
{{ include "osam.tomlKey" $key }} = {{ include "osam.tomlValue" $value }}
{{- end -}}
{{- end -}}
{{- range $key, $value := .table -}}
{{- if kindIs "map" $value -}}
{{- $subPath := append $path (include "osam.tomlKey" $key) }}

[{{ join "." $subPath }}]
{{- include "osam.tomlTable" (dict "table" $value "path" $subPath) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "osam.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "osam.tomlValue" -}}
{{- if kindIs "string" . -}}
{{ toJson . }}
{{- else if kindIs "bool" . -}}
{{ . }}
{{- else if kindIs "float64" . -}}
{{- if eq (floor .) . }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) -}}
{{ . }}
{{- else if kindIs "slice" . -}}
[{{ range $index, $item := . }}{{ if $index }}, {{ end }}{{ include "osam.tomlValue" $item }}{{ end }}]
{{- else -}}
{{- fail (printf "config: cannot write %v (%s) as a TOML value" . (kindOf .)) -}}
{{- end -}}
{{- end -}}
