{{/* Chart name, possibly overridden. */}}
{{- define "nodewarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every object name. */}}
{{- define "nodewarden.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "nodewarden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "nodewarden.selectorLabels" . }}
app.kubernetes.io/part-of: nodewarden
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select pods; add app.kubernetes.io/component. */}}
{{- define "nodewarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nodewarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nodewarden.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "nodewarden.agentName" -}}
{{ include "nodewarden.fullname" . }}-agent
{{- end }}

{{- define "nodewarden.controllerName" -}}
{{ include "nodewarden.fullname" . }}-controller
{{- end }}

{{/* The user name of the agent's ServiceAccount, as the API server sees it. */}}
{{- define "nodewarden.agentUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "nodewarden.agentName" . }}
{{- end }}
