{{- define "celeris.labels" -}}
app.kubernetes.io/name: celeris
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "celeris.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- define "celeris.operatorSelectorLabels" -}}
app.kubernetes.io/name: celeris-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}
{{- /* The ConfigMap of strategy plugin files: the one values name, else the chart's own (inline files), else none. */ -}}
{{- define "celeris.strategyConfigMap" -}}
{{- if .Values.strategies.plugins.configMap -}}
{{ .Values.strategies.plugins.configMap }}
{{- else if .Values.strategies.plugins.files -}}
{{ .Release.Name }}-strategy-plugins
{{- end -}}
{{- end -}}
