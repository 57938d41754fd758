{{/* Names and labels shared by every template. */}}
{{- define "thunderbolt.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thunderbolt.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "thunderbolt.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "thunderbolt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: thunderbolt
{{- end -}}

{{- define "thunderbolt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "thunderbolt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "thunderbolt.mlflowSelectorLabels" -}}
app.kubernetes.io/name: {{ include "thunderbolt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: mlflow
{{- end -}}

{{- define "thunderbolt.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "thunderbolt.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "thunderbolt.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Watched namespaces as a JSON list (empty when cluster-wide). */}}
{{- define "thunderbolt.watchNamespaces" -}}
{{- if .Values.clusterWide -}}
[]
{{- else if .Values.watchNamespaces -}}
{{- .Values.watchNamespaces | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{- define "thunderbolt.mlflowName" -}}
{{- printf "%s-mlflow" (include "thunderbolt.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thunderbolt.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "thunderbolt.mlflowName" .) .Release.Namespace (int .Values.mlflow.port) -}}
{{- else -}}
{{- .Values.mlflow.externalUri -}}
{{- end -}}
{{- end -}}

{{- define "thunderbolt.artifactsUri" -}}
{{- if .Values.artifacts.uri -}}
{{- .Values.artifacts.uri -}}
{{- else if .Values.mlflow.enabled -}}
mlflow
{{- end -}}
{{- end -}}

{{- define "thunderbolt.reportUrl" -}}
{{- default (printf "http://%s.%s.svc:%d" (include "thunderbolt.fullname" .) .Release.Namespace (int .Values.operator.ports.reports)) .Values.operator.reportUrl -}}
{{- end -}}

{{/*
The operator's rights in a watched namespace: what it creates for Trials and
ModelDeployments, nothing more. No wildcards; the chart tests enforce that.
*/}}
{{- define "thunderbolt.rules" -}}
- apiGroups: [thunderbolt.io]
  resources: [experiments, trials, modeldeployments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [thunderbolt.io]
  resources: [experiments/status, trials/status, modeldeployments/status]
  verbs: [get, update, patch]
- apiGroups: [thunderbolt.io]
  resources: [experiments/finalizers, trials/finalizers, modeldeployments/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
# Per-trial report tokens: created with the Trial, deleted with it.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The StdOut metrics collector follows Trial containers' output (read-only).
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Exact canary weights when the cluster serves the Gateway API (inert otherwise).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
{{- if and .Values.ha.enabled (not .Values.clusterWide) }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end -}}

{{- define "thunderbolt.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* NetworkPolicy peers: pods in watched namespaces, and who may scrape metrics. */}}
{{- define "thunderbolt.fromWatched" -}}
{{- $namespaces := include "thunderbolt.watchNamespaces" . | fromJsonArray }}
{{- if $namespaces }}
- namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values: {{ append $namespaces .Release.Namespace | uniq | toJson }}
{{- else }}
- namespaceSelector: {}
{{- end }}
{{- end }}
{{/* MLflow's clients only: training pods (label thunderbolt.io/trial), serving pods
(thunderbolt.io/modeldeployment) in watched namespaces, and the operator itself. The
bundled MLflow has no authentication, so no other pod may reach it. */}}
{{- define "thunderbolt.mlflowClients" -}}
{{- $namespaces := include "thunderbolt.watchNamespaces" . | fromJsonArray }}
{{- $nsSelector := dict }}
{{- if $namespaces }}
{{- $nsSelector = dict "matchExpressions" (list (dict "key" "kubernetes.io/metadata.name" "operator" "In" "values" (append $namespaces .Release.Namespace | uniq))) }}
{{- end }}
{{- range $key := list "thunderbolt.io/trial" "thunderbolt.io/modeldeployment" }}
- namespaceSelector: {{ toJson $nsSelector }}
  podSelector:
    matchExpressions:
      - {key: {{ $key }}, operator: Exists}
{{- end }}
- podSelector:
    matchLabels:
      {{- include "thunderbolt.selectorLabels" . | nindent 6 }}
{{- end }}
{{- define "thunderbolt.metricsFrom" -}}
{{- if .Values.networkPolicy.metricsFrom }}
{{- toYaml .Values.networkPolicy.metricsFrom }}
{{- else }}
- namespaceSelector: {}
{{- end }}
{{- end }}

{{- define "thunderbolt.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "thunderbolt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end -}}

{{/* The dashboard's rights: read what it shows, nothing else (no secrets, no writes). */}}
{{- define "thunderbolt.dashboardRules" -}}
- apiGroups: [thunderbolt.io]
  resources: [experiments, trials, modeldeployments]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events, pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
{{- end -}}
