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


{{- /*
One Deployment, ServiceAccount and leader Lease per controller: the ExternalSecret controller never
runs with the SealedSecret controller's rules (which reach the sealing keys), nor the other way
round. Each helper takes (list $ "sealed"|"external").
*/ -}}

{{- define "hush.componentName" -}}
{{- $root := index . 0 -}}
{{- if eq (index . 1) "sealed" -}}
{{- include "hush.fullname" $root -}}
{{- else -}}
{{- printf "%s-%s" (include "hush.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hush.componentSelectorLabels" -}}
{{ include "hush.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}-controller
{{- end -}}

{{- define "hush.externalServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-external" (include "hush.fullname" .)) .Values.controllers.external.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.controllers.external.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hush.componentServiceAccountName" -}}
{{- if eq (index . 1) "sealed" -}}
{{- include "hush.serviceAccountName" (index . 0) -}}
{{- else -}}
{{- include "hush.externalServiceAccountName" (index . 0) -}}
{{- end -}}
{{- end -}}

{{- define "hush.leaseName" -}}
{{- $root := index . 0 -}}
{{- if eq (index . 1) "sealed" -}}
{{- $root.Values.leaderElection.leaseName -}}
{{- else -}}
{{- printf "%s-%s" $root.Values.leaderElection.leaseName (index . 1) -}}
{{- end -}}
{{- end -}}

{{/*
A component's `--shards` (list root component): sealed.shards or controllers.external.shards.
*/}}
{{- define "hush.shards" -}}
{{- $root := index . 0 -}}
{{- if eq (index . 1) "sealed" -}}
{{- int $root.Values.sealed.shards -}}
{{- else -}}
{{- int (default 1 $root.Values.controllers.external.shards) -}}
{{- end -}}
{{- end -}}
