{{/*
Names and labels.
*/}}
{{- define "at-orchestrator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "at-orchestrator.fullname" -}}
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

{{/* Leaves room for the "-coordinator" suffix and the pod hash within 63 characters. */}}
{{- define "at-orchestrator.componentName" -}}
{{- printf "%s-%s" (include "at-orchestrator.fullname" .root | trunc 40 | trimSuffix "-") .component }}
{{- end }}

{{- define "at-orchestrator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "at-orchestrator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "at-orchestrator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "at-orchestrator.labels" -}}
helm.sh/chart: {{ include "at-orchestrator.chart" . }}
{{ include "at-orchestrator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: at-orchestrator
{{- end }}

{{/* Selector labels of one role: (dict "root" $ "component" "worker"). */}}
{{- define "at-orchestrator.componentSelectorLabels" -}}
{{ include "at-orchestrator.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "at-orchestrator.componentLabels" -}}
{{ include "at-orchestrator.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "at-orchestrator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "at-orchestrator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "at-orchestrator.secretName" -}}
{{- default (include "at-orchestrator.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "at-orchestrator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
A setting as the processes will see it: the value in .Values.config, else the code's default.
Only the settings the chart itself needs (ports, drain time, stream names) are listed here.
*/}}
{{- define "at-orchestrator.setting" -}}
{{- $defaults := dict "HTTP_PORT" "8080" "SHUTDOWN_GRACE_SEC" "10" "NATS_STREAM" "trading-events" "NATS_DURABLE" "orchestrator-consumer" "PARTITIONS" "64" }}
{{- $value := get .root.Values.config .name }}
{{- if or (kindIs "invalid" $value) (eq (toString $value) "") }}
{{- get $defaults .name }}
{{- else }}
{{- include "at-orchestrator.string" $value }}
{{- end }}
{{- end }}

{{/*
A value as the string a process or KEDA parses. Numbers from values files arrive as float64, which
toString prints in exponent form from 1e+06 up ("1e+06"): whole numbers are printed as integers.
*/}}
{{- define "at-orchestrator.string" -}}
{{- if and (kindIs "float64" .) (eq (float64 .) (floor .)) }}
{{- printf "%d" (int64 .) }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
How many servers the chart's NATS URL lists (nats.url, comma separated); 0 with existingSecret, whose
URL the chart cannot read.
*/}}
{{- define "at-orchestrator.natsServers" -}}
{{- if or .Values.existingSecret (not .Values.nats.url) }}0{{ else }}{{ len (splitList "," .Values.nats.url) }}{{ end }}
{{- end }}

{{- define "at-orchestrator.httpPort" -}}
{{- include "at-orchestrator.setting" (dict "root" . "name" "HTTP_PORT") | int }}
{{- end }}

{{- define "at-orchestrator.autoscaled" -}}
{{- if or .Values.autoscaling.enabled .Values.keda.enabled }}true{{ end }}
{{- end }}

{{/* Checks that cannot be written in values.schema.json. */}}
{{- define "at-orchestrator.validate" -}}
{{- include "at-orchestrator.validateSecurity" . }}
{{- $grace := include "at-orchestrator.setting" (dict "root" . "name" "SHUTDOWN_GRACE_SEC") | float64 }}
{{- range $component := list "coordinator" "worker" }}
{{- $c := index $.Values $component }}
{{- if le (float64 $c.terminationGracePeriodSeconds) (addf $c.preStopSleepSeconds $grace) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must be greater than %s.preStopSleepSeconds (%v) + SHUTDOWN_GRACE_SEC (%v), or Kubernetes kills the process before it has drained" $component $c.terminationGracePeriodSeconds $component $c.preStopSleepSeconds $grace) }}
{{- end }}
{{- end }}
{{- if and .Values.rules.enabled (not (or .Values.rules.inline .Values.rules.existingConfigMap)) }}
{{- fail "rules.enabled needs rules.inline or rules.existingConfigMap" }}
{{- end }}
{{- if and .Values.rules.inline .Values.rules.existingConfigMap }}
{{- fail "rules.inline and rules.existingConfigMap are mutually exclusive" }}
{{- end }}
{{- if and .Values.mlModel.enabled (not (or .Values.mlModel.existingConfigMap .Values.mlModel.existingClaim)) }}
{{- fail "mlModel.enabled needs mlModel.existingConfigMap or mlModel.existingClaim" }}
{{- end }}
{{- if and .Values.mlModel.existingConfigMap .Values.mlModel.existingClaim }}
{{- fail "mlModel.existingConfigMap and mlModel.existingClaim are mutually exclusive" }}
{{- end }}
{{- if and (not .Values.existingSecret) (or (not .Values.nats.url) (not (or .Values.redis.url .Values.redis.sentinels .Values.redis.clusterNodes))) }}
{{- fail "nats.url and redis.url are required unless existingSecret names a Secret holding NATS_URL and REDIS_URL (redis.sentinels with redis.sentinelMaster, or redis.clusterNodes, may stand for redis.url)" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.clusterNodes }}
{{- fail "redis.url and redis.clusterNodes are both set: one way to reach Redis (set redis.url to \"\" to use the Redis Cluster)" }}
{{- end }}
{{- if and .Values.redis.sentinels .Values.redis.clusterNodes }}
{{- fail "redis.sentinels and redis.clusterNodes are both set: one way to reach Redis" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.sentinels }}
{{- fail "redis.url and redis.sentinels are both set: one way to reach Redis (set redis.url to \"\" to use the Sentinels)" }}
{{- end }}
{{- if and .Values.redis.sentinels (not .Values.redis.sentinelMaster) }}
{{- fail "redis.sentinels needs redis.sentinelMaster: the name the Sentinels monitor the primary under" }}
{{- end }}
{{- if and .Values.redis.sentinelMaster (not .Values.redis.sentinels) }}
{{- fail "redis.sentinelMaster needs redis.sentinels: the Sentinels' host:port, comma separated" }}
{{- end }}
{{- $previous := lookup "v1" "ConfigMap" .Release.Namespace (include "at-orchestrator.fullname" .) }}
{{- /* lookup finds nothing under `helm template` and on a first install. */}}
{{- $previousData := dict }}
{{- if $previous }}{{ $previousData = $previous.data | default dict }}{{ end }}
{{- if hasKey $previousData "PARTITIONS" }}
{{- $partitions := include "at-orchestrator.setting" (dict "root" . "name" "PARTITIONS") }}
{{- if ne (toString (index $previousData "PARTITIONS")) $partitions }}
{{- fail (printf "config.PARTITIONS cannot change from %v to %v on a running cluster: the partition count is fixed for the cluster's life (see docs/deploy.md)" (index $previousData "PARTITIONS") $partitions) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes every pod has: /tmp on a read-only root filesystem. */}}
{{- define "at-orchestrator.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end }}

{{/* The container environment shared by every role: the ConfigMap, the Secret, WORKER_ID = pod name. */}}
{{- define "at-orchestrator.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "at-orchestrator.fullname" . }}
  - secretRef:
      name: {{ include "at-orchestrator.secretName" . }}
{{- end }}

{{- define "at-orchestrator.podIdentityEnv" -}}
- name: WORKER_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: COORDINATOR_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}

{{/*
The pod template of one role: (dict "root" $ "component" "worker" "args" (list "worker")).
Workers also get the rules file and the ml model when those are enabled.
*/}}
{{- define "at-orchestrator.podTemplate" -}}
{{- $root := .root }}
{{- $values := index $root.Values .component }}
{{- $isWorker := eq .component "worker" -}}
metadata:
  labels:
    {{- include "at-orchestrator.componentLabels" . | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when a setting changes: the processes read their environment once, at start.
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if not $root.Values.existingSecret }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- end }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "at-orchestrator.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
  {{- if $root.Values.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range $root.Values.topologySpread.topologyKeys }}
    - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "at-orchestrator.componentSelectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "at-orchestrator.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      {{- include "at-orchestrator.envFrom" $root | nindent 6 }}
      env:
        {{- include "at-orchestrator.podIdentityEnv" $root | nindent 8 }}
        {{- if $isWorker }}
        - name: COORDINATOR
          value: {{ ternary "embedded" "off" $root.Values.worker.embeddedCoordinator | quote }}
        - name: NODE_OPTIONS
          value: {{ printf "--max-old-space-size=%d" (int $root.Values.worker.heapLimitMiB) | quote }}
        {{- end }}
        {{- if and $isWorker $root.Values.rules.enabled }}
        - name: RULES_FILE
          value: /etc/at-orchestrator/rules/{{ $root.Values.rules.fileName }}
        {{- end }}
        {{- if and $isWorker $root.Values.mlModel.enabled }}
        - name: ML_MODEL_FILE
          value: /etc/at-orchestrator/model/{{ $root.Values.mlModel.fileName }}
        {{- end }}
        {{- with include "at-orchestrator.securityEnv" (dict "root" $root "role" .component) | trim }}
        {{- . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ include "at-orchestrator.httpPort" $root }}
          protocol: TCP
      startupProbe:
        httpGet:
          path: /health
          port: http
        periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
      livenessProbe:
        # /health answers 503 only when the process is unhealthy; degraded (e.g. Redis down) stays 200.
        httpGet:
          path: /health
          port: http
        periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
      readinessProbe:
        # /ready answers 503 while starting and while draining.
        httpGet:
          path: /ready
          port: http
        periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
      lifecycle:
        preStop:
          # Leave the Service endpoints before SIGTERM starts the drain.
          exec:
            command: ["sleep", "{{ $values.preStopSleepSeconds }}"]
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if and $isWorker $root.Values.rules.enabled }}
        - name: rules
          mountPath: /etc/at-orchestrator/rules
          readOnly: true
        {{- end }}
        {{- if and $isWorker $root.Values.mlModel.enabled }}
        - name: model
          mountPath: /etc/at-orchestrator/model
          readOnly: true
        {{- end }}
        {{- with include "at-orchestrator.securityMounts" (dict "root" $root "role" .component) | trim }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "at-orchestrator.tmpVolume" $root | nindent 4 }}
    {{- with include "at-orchestrator.securityVolumes" (dict "root" $root "role" .component) | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if and $isWorker $root.Values.rules.enabled }}
    - name: rules
      configMap:
        name: {{ default (printf "%s-rules" (include "at-orchestrator.fullname" $root)) $root.Values.rules.existingConfigMap }}
        items:
          - key: {{ $root.Values.rules.fileName }}
            path: {{ $root.Values.rules.fileName }}
    {{- end }}
    {{- if and $isWorker $root.Values.mlModel.enabled }}
    - name: model
      {{- if $root.Values.mlModel.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $root.Values.mlModel.existingClaim }}
        readOnly: true
      {{- else }}
      configMap:
        name: {{ $root.Values.mlModel.existingConfigMap }}
        items:
          - key: {{ $root.Values.mlModel.fileName }}
            path: {{ $root.Values.mlModel.fileName }}
      {{- end }}
    {{- end }}
{{- end }}
