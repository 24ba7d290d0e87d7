{{/* The chart name, or nameOverride. */}}
{{- define "target-allocator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: fullnameOverride, else the release name if it contains the chart name, else release-chart. */}}
{{- define "target-allocator.fullname" -}}
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

{{- define "target-allocator.selectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/name: {{ include "target-allocator.name" . }}
{{- end }}

{{- define "target-allocator.labels" -}}
{{ include "target-allocator.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "target-allocator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "target-allocator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Namespace of the collector pods. */}}
{{- define "target-allocator.collectorNamespace" -}}
{{- default .Release.Namespace .Values.collector.namespace }}
{{- end }}

{{- define "target-allocator.strategiesConfigMap" -}}
{{- default (printf "%s-strategies" (include "target-allocator.fullname" .)) .Values.strategies.existingConfigMap }}
{{- end }}

{{/* The allocator's config file, targetallocator.yaml. */}}
{{- define "target-allocator.config" -}}
{{- $config := dict
  "collector_selector" .Values.collector.selector
  "allocation_strategy" .Values.allocationStrategy
  "filter_strategy" .Values.filterStrategy
  "strategy_dir" .Values.strategies.mountPath
  "strategy_cache_dir" .Values.cache.mountPath
  "config" .Values.prometheus
}}
{{- with .Values.allocationStrategyConfig }}
{{- $_ := set $config "allocation_strategy_config" . }}
{{- end }}
{{- with .Values.allocationFallbackStrategy }}
{{- $_ := set $config "allocation_fallback_strategy" . }}
{{- end }}
{{- toYaml (mustMergeOverwrite $config .Values.extraConfig) }}
{{- end }}
