{{/*
Names. The defaults (release "meshmetric-operator") give the names the operator's flags default to.
*/}}
{{- define "meshmetric-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meshmetric-operator.fullname" -}}
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

{{- define "meshmetric-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meshmetric-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshmetric-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "meshmetric-operator.labels" -}}
helm.sh/chart: {{ include "meshmetric-operator.chart" . }}
{{ include "meshmetric-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: meshmetric-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "meshmetric-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meshmetric-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "meshmetric-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret with the webhook's serving certificate. */}}
{{- define "meshmetric-operator.webhookSecretName" -}}
{{- if eq .Values.webhook.certificate.mode "secret" }}
{{- required "webhook.certificate.secretName is required when webhook.certificate.mode is secret" .Values.webhook.certificate.secretName }}
{{- else }}
{{- default (printf "%s-webhook-tls" (include "meshmetric-operator.fullname" .)) .Values.webhook.certificate.secretName }}
{{- end }}
{{- end }}

{{- define "meshmetric-operator.leaseName" -}}
{{- default (include "meshmetric-operator.fullname" .) .Values.leaderElection.id }}
{{- end }}

{{- define "meshmetric-operator.certificateName" -}}
{{- printf "%s-webhook" (include "meshmetric-operator.fullname" .) }}
{{- end }}

{{/* Where the Secret is mounted in certManager and secret modes (the operator's default paths). */}}
{{- define "meshmetric-operator.certDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end }}

{{/*
Annotations of both webhook configurations: cert-manager's CA injection in certManager mode, plus
webhook.annotations.
*/}}
{{- define "meshmetric-operator.webhookAnnotations" -}}
{{- $a := deepCopy .Values.webhook.annotations }}
{{- if eq .Values.webhook.certificate.mode "certManager" }}
{{- $_ := set $a "cert-manager.io/inject-ca-from" (printf "%s/%s" .Release.Namespace (include "meshmetric-operator.certificateName" .)) }}
{{- end }}
{{- if $a }}
annotations:
  {{- toYaml $a | nindent 2 }}
{{- end }}
{{- end }}

{{/* The clientConfig of a webhook; the argument is (list $ "/path"). */}}
{{- define "meshmetric-operator.clientConfig" -}}
{{- $ := index . 0 -}}
clientConfig:
  service:
    name: {{ include "meshmetric-operator.fullname" $ }}
    namespace: {{ $.Release.Namespace }}
    path: {{ index . 1 }}
    port: {{ $.Values.webhook.servicePort }}
  {{- if eq $.Values.webhook.certificate.mode "secret" }}
  caBundle: {{ required "webhook.certificate.caBundle is required when webhook.certificate.mode is secret" $.Values.webhook.certificate.caBundle }}
  {{- end }}
{{- end }}

{{/* Checks of values that values.schema.json cannot express. */}}
{{- define "meshmetric-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled must be true when replicaCount is more than 1: two operators would write the same status" }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.terminationGracePeriodSeconds)) (le (int .Values.terminationGracePeriodSeconds) (int .Values.webhook.shutdownTimeout)) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be more than webhook.shutdownTimeout (%v), or in-flight admissions are cut off" .Values.terminationGracePeriodSeconds .Values.webhook.shutdownTimeout) }}
{{- end }}
{{- if le (int .Values.leaderElection.leaseDuration) (int .Values.leaderElection.renewDeadline) }}
{{- fail "leaderElection.leaseDuration must be more than leaderElection.renewDeadline" }}
{{- end }}
{{- if le (mulf .Values.leaderElection.renewDeadline 1.0) (mulf .Values.leaderElection.retryPeriod 1.2) }}
{{- fail "leaderElection.renewDeadline must be more than 1.2 x leaderElection.retryPeriod" }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.webhook.port) }}
{{- fail "metrics.port and webhook.port must differ" }}
{{- end }}
{{- if and (eq .Values.webhook.certificate.mode "certManager") (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) }}
{{- fail "webhook.certificate.mode=certManager needs cert-manager (API cert-manager.io/v1), which this cluster does not serve. Install cert-manager first, or with helm template/Argo CD pass --api-versions cert-manager.io/v1" }}
{{- end }}
{{- if and (or .Values.serviceMonitor.enabled .Values.podMonitor.enabled) (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}
{{- fail "serviceMonitor/podMonitor need the Prometheus Operator (API monitoring.coreos.com/v1), which this cluster does not serve. Install it first, or with helm template/Argo CD pass --api-versions monitoring.coreos.com/v1" }}
{{- end }}
{{- end }}
