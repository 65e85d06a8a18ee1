{{/*
Names. fullname is capped at 45 characters so that every derived name (fullname + "-agent-node-scope",
"-webhook-tls", ...) stays a valid 63-character DNS label.
*/}}
{{- define "hwcap-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 45 | trimSuffix "-" }}
{{- end }}

{{- define "hwcap-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hwcap-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Call with (dict "ctx" $ "component" "controller"). Selector labels stay immutable: name, instance and
component only (a DaemonSet/Deployment selector cannot change on upgrade).
*/}}
{{- define "hwcap-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hwcap-operator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "hwcap-operator.labels" -}}
{{ include "hwcap-operator.selectorLabels" . }}
helm.sh/chart: {{ include "hwcap-operator.chart" .ctx }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: hwcap-operator
{{- end }}

{{/* Object names derived from fullname. */}}
{{- define "hwcap-operator.operatorName" -}}{{ include "hwcap-operator.fullname" . }}{{- end }}
{{- define "hwcap-operator.agentName" -}}{{ include "hwcap-operator.fullname" . }}-agent{{- end }}
{{- define "hwcap-operator.webhookServiceName" -}}{{ include "hwcap-operator.fullname" . }}-webhook{{- end }}
{{- define "hwcap-operator.metricsServiceName" -}}{{ include "hwcap-operator.fullname" . }}-metrics{{- end }}
{{- define "hwcap-operator.tlsSecretName" -}}
{{- .Values.existingCert.secretName | default (printf "%s-webhook-tls" (include "hwcap-operator.fullname" .)) }}
{{- end }}
{{- define "hwcap-operator.certificateName" -}}{{ include "hwcap-operator.fullname" . }}-webhook{{- end }}
{{- define "hwcap-operator.issuerName" -}}{{ include "hwcap-operator.fullname" . }}-selfsigned{{- end }}

{{/* The image injected as every wrapped pod's init container (hwcap-exec only); a digest wins over the tag. */}}
{{- define "hwcap-operator.initImage" -}}
{{- if .Values.initImage.digest }}
{{- printf "%s@%s" .Values.initImage.repository .Values.initImage.digest }}
{{- else }}
{{- printf "%s:%s" .Values.initImage.repository (default .Chart.AppVersion .Values.initImage.tag) }}
{{- end }}
{{- end }}

{{/* The one image for the operator and the agent; a digest wins over the tag. */}}
{{- define "hwcap-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespaces whose pods are never mutated: kube-system, our own (the agent must never run under a mask), NFD's
(NFD reads its own HWCAPs; masking it would shrink every baseline forever) and the user's list. Used both by the
webhook's namespaceSelector and by the operator's --excluded-namespaces (defence in depth).
*/}}
{{- define "hwcap-operator.excludedNamespaces" -}}
{{- $all := list "kube-system" .Release.Namespace .Values.nfd.namespace }}
{{- range .Values.excludedNamespaces }}
{{- $all = append $all . }}
{{- end }}
{{- $all | uniq | join "," }}
{{- end }}

{{/*
Security context of every pod and container: by default Pod Security "restricted" (no capability, non-root
65532, no privilege escalation, read-only root filesystem, RuntimeDefault seccomp). podSecurityContext and
containerSecurityContext replace it key by key; OpenShift's restricted-v2 SCC assigns the UID itself, so there
set runAsUser, runAsGroup and fsGroup to null (ci/openshift-values.yaml).
*/}}
{{- define "hwcap-operator.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "hwcap-operator.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* Environment of the operator's entrypoint lookups: proxy and the registry CA bundle (requests reads both). */}}
{{- define "hwcap-operator.registryEnv" -}}
{{- with .Values.operator.proxy }}
{{- if .httpsProxy }}
- name: HTTPS_PROXY
  value: {{ .httpsProxy | quote }}
{{- end }}
{{- if .httpProxy }}
- name: HTTP_PROXY
  value: {{ .httpProxy | quote }}
{{- end }}
{{- if .noProxy }}
- name: NO_PROXY
  value: {{ .noProxy | quote }}
{{- end }}
{{- end }}
{{- if or .Values.operator.registryCA.configMap .Values.operator.registryCA.secret }}
- name: REQUESTS_CA_BUNDLE
  value: /etc/hwcap/registry-ca/{{ .Values.operator.registryCA.key }}
{{- end }}
{{- end }}

{{/* Whether the Prometheus Operator API is served (ServiceMonitor/PodMonitor are rendered only then). */}}
{{- define "hwcap-operator.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{- end }}
{{- end }}

{{/* Fail early on value combinations that would run a broken or unsafe operator. */}}
{{- define "hwcap-operator.validate" -}}
{{- if and .Values.certManager.enabled .Values.certManager.issuerRef.name (not .Values.certManager.issuerRef.kind) }}
{{- fail "certManager.issuerRef.kind is required when certManager.issuerRef.name is set (Issuer or ClusterIssuer)" }}
{{- end }}
{{- end }}

{{/* The coordination.k8s.io Lease whose holder is the one operator replica that writes. */}}
{{- define "hwcap-operator.leaderLease" -}}
{{ include "hwcap-operator.fullname" . }}-leader
{{- end }}
