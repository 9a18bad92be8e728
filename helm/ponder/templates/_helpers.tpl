{{- define "ponder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ponder.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ponder.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ponder
{{- end -}}

{{- define "ponder.labels" -}}
app.kubernetes.io/name: {{ include "ponder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "ponder.commonLabels" . }}
{{- end -}}

{{/* Labels of a component's pods, each key once: (dict "ctx" $ "component" "router" "values" .Values.router) */}}
{{- define "ponder.podLabels" -}}
{{- $l := mustMergeOverwrite (dict) (.values.podLabels | default dict) (include "ponder.commonLabels" .ctx | fromYaml) (include "ponder.selector" . | fromYaml) -}}
{{- toYaml $l -}}
{{- end -}}

{{/* Pod metadata of a component: labels and annotations. Same argument as ponder.podLabels. */}}
{{- define "ponder.podMeta" -}}
labels:
  {{- include "ponder.podLabels" . | nindent 2 }}
{{- with .values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}


{{/* Selector labels of one component: (dict "ctx" $ "component" "router") */}}
{{- define "ponder.selector" -}}
app.kubernetes.io/name: {{ include "ponder.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* A ponder image: (dict "ctx" $ "image" .Values.router.image) */}}
{{- define "ponder.image" -}}
{{- $repo := printf "%s/%s" .ctx.Values.imageRegistry .image.repository -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ponder.redisSecret" -}}
{{- .Values.redis.auth.existingSecret | default (printf "%s-redis" (include "ponder.fullname" .)) -}}
{{- end -}}

{{/* Redis URL for the env; $(REDIS_PASSWORD) is expanded by the kubelet from the entry before it. */}}
{{- define "ponder.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://:$(REDIS_PASSWORD)@%s-redis.%s.svc:6379/0" (include "ponder.fullname" .) .Release.Namespace -}}
{{- else if .Values.redis.externalUrl -}}
{{- .Values.redis.externalUrl -}}
{{- else -}}
{{- fail "set redis.enabled=true or redis.externalUrl" -}}
{{- end -}}
{{- end -}}

{{/* Env entries that give a container the Redis URL (with the password from the Secret). */}}
{{- define "ponder.redisEnv" -}}
{{- if .Values.redis.enabled -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "ponder.redisSecret" . }}, key: {{ .Values.redis.auth.existingSecretKey }}}
{{ end -}}
- name: PONDER_REDIS_URL
  value: {{ include "ponder.redisUrl" . | quote }}
{{- end -}}

{{- define "ponder.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "ponder.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Drop unset (null) resource quantities. */}}
{{- define "ponder.resources" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- $list := dict -}}
{{- range $rk, $rv := $v -}}{{- if $rv -}}{{- $_ := set $list $rk $rv -}}{{- end -}}{{- end -}}
{{- if $list -}}{{- $_ := set $out $k $list -}}{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{- define "ponder.pullSecretNames" -}}
{{- $names := list -}}
{{- range .Values.imagePullSecrets }}{{- $names = append $names .name -}}{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* TLS: the Secret holding tls.crt / tls.key (/ ca.crt), and its env, mount and volume for a ponder server. */}}
{{- define "ponder.tlsSecret" -}}
{{- if .Values.tls.secretName -}}{{ .Values.tls.secretName }}{{- else -}}{{ include "ponder.fullname" . }}-tls{{- end -}}
{{- end -}}

{{- define "ponder.tlsEnv" -}}
{{- if .Values.tls.enabled }}
- {name: PONDER_SERVE_TLS_CERT, value: /etc/ponder-tls/tls.crt}
- {name: PONDER_SERVE_TLS_KEY, value: /etc/ponder-tls/tls.key}
- {name: PONDER_SERVE_TLS_CLIENT_AUTH, value: {{ .Values.tls.clientAuth | quote }}}
{{- if or .Values.tls.caSecretName .Values.tls.certManager.enabled (ne .Values.tls.clientAuth "none") }}
- {name: PONDER_SERVE_TLS_CA, value: /etc/ponder-tls-ca/ca.crt}
{{- end }}
{{- end }}
{{- end -}}

{{/* OpenTelemetry env of a ponder container, empty while observability.otlp.endpoint is: (dict "ctx" $ "service" "ponder-router") */}}
{{- define "ponder.otelEnv" -}}
{{- $o := .ctx.Values.observability.otlp -}}
{{- if $o.endpoint -}}
- {name: OTEL_TRACES_EXPORTER, value: otlp}
- {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ $o.endpoint | quote }}}
- {name: OTEL_EXPORTER_OTLP_INSECURE, value: {{ $o.insecure | quote }}}
- {name: OTEL_SERVICE_NAME, value: {{ .service | quote }}}
- {name: OTEL_TRACES_SAMPLER, value: parentbased_traceidratio}
- {name: OTEL_TRACES_SAMPLER_ARG, value: {{ $o.samplerRatio | toString | quote }}}
- name: OTEL_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: OTEL_POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
{{- $attrs := list "k8s.pod.name=$(OTEL_POD_NAME)" "k8s.namespace.name=$(OTEL_POD_NAMESPACE)" (printf "service.namespace=%s" .ctx.Release.Name) (printf "service.version=%s" .ctx.Chart.AppVersion) }}
{{- range $k, $v := $o.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
{{- /* One attribute a line: in a double-quoted YAML scalar an escaped line break joins lines with nothing between. */}}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "
  {{- range $i, $a := $attrs }}{{ if $i }},\
    {{ end }}{{ $a | quote | trimPrefix "\"" | trimSuffix "\"" }}{{ end }}"
{{- if $o.headersSecret }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom: {secretKeyRef: {name: {{ $o.headersSecret | quote }}, key: headers}}
{{- end }}
{{- end }}
{{- end -}}

{{- define "ponder.tlsMounts" -}}
{{- if .Values.tls.enabled }}
- {name: tls, mountPath: /etc/ponder-tls, readOnly: true}
{{- if or .Values.tls.caSecretName .Values.tls.certManager.enabled (ne .Values.tls.clientAuth "none") }}
- {name: tls-ca, mountPath: /etc/ponder-tls-ca, readOnly: true}
{{- end }}
{{- end }}
{{- end -}}

{{- define "ponder.tlsVolumes" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "ponder.tlsSecret" . }}
    items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key}]
{{- if or .Values.tls.caSecretName .Values.tls.certManager.enabled (ne .Values.tls.clientAuth "none") }}
- name: tls-ca
  secret:
    secretName: {{ .Values.tls.caSecretName | default (include "ponder.tlsSecret" .) }}
    items: [{key: ca.crt, path: ca.crt}]
{{- end }}
{{- end }}
{{- end -}}

{{/* gRPC probes: the kubelet's gRPC probe speaks plaintext only, so with TLS on the port is probed by TCP. */}}
{{- define "ponder.grpcProbe" -}}
{{- if .ctx.Values.tls.enabled -}}
tcpSocket: {port: {{ .port }}}
{{- else -}}
grpc: {port: {{ .port }}}
{{- end -}}
{{- end -}}

{{/* Resource attributes the operator adds to pool pods' spans: release and the user's attributes. */}}
{{- define "ponder.poolOtelAttributes" -}}
{{- $attrs := list (printf "service.namespace=%s" .Release.Name) (printf "service.version=%s" .Chart.AppVersion) -}}
{{- range $k, $v := .Values.observability.otlp.resourceAttributes -}}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $attrs -}}
{{- end -}}
