{{- define "hush.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hush.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hush.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hush.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hush.labels" -}}
{{ include "hush.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hush.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hush.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hush.controllers" -}}
{{- $c := list -}}
{{- if .Values.controllers.sealed.enabled -}}{{- $c = append $c "sealed" -}}{{- end -}}
{{- if .Values.controllers.external.enabled -}}{{- $c = append $c "external" -}}{{- end -}}
{{- if not $c -}}{{- fail "enable at least one of controllers.sealed.enabled, controllers.external.enabled" -}}{{- end -}}
{{- join "," $c -}}
{{- end -}}
