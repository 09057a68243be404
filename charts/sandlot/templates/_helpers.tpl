{{- define "sandlot.name" -}}{{ .Release.Name }}-sandlot{{- end -}}
{{- define "sandlot.labels" -}}
app.kubernetes.io/name: sandlot
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "sandlot.selector" -}}
app.kubernetes.io/name: sandlot
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
