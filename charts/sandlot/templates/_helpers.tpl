{{- define "sandlot.name" -}}{{ .Release.Name }}-sandlot{{- end -}}
{{- define "sandlot.labels" -}}
app.kubernetes.io/name: sandlot
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "sandlot.selector" -}}
app.kubernetes.io/name: sandlot
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "sandlot.socket" -}}{{ .Values.hostPaths.socketDir }}/sandlot.sock{{- end -}}
{{/*
The daemon's configuration: the keys the chart owns (paths that are mounted, the
metrics address) merged with .Values.config, which the schema keeps free of them, so
no key is written twice.
*/}}
{{- define "sandlot.config" -}}
{{- $hp := .Values.hostPaths -}}
{{- $bins := prepend $hp.cniBinDirs "/usr/lib/cni" -}}
{{- $metrics := "" -}}
{{- if .Values.metrics.enabled -}}
{{- $metrics = printf "%s:%d" .Values.metrics.bindAddress (int .Values.metrics.port) -}}
{{- end -}}
{{- $owned := dict "socket_path" (include "sandlot.socket" .) "root_dir" $hp.rootDir "state_dir" $hp.stateDir "cni_conf_dir" $hp.cniConfDir "cni_bin_dirs" $bins "metrics_address" $metrics "conmon_cgroup" .Values.conmonCgroup -}}
{{- $extra := deepCopy (.Values.config | default dict) -}}
{{- toYaml (merge $owned $extra) -}}
{{- end -}}
