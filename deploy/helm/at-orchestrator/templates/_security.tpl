{{/*
Credentials, TLS files and the control-plane secrets, per role. A role is "worker", "coordinator" or
"operator" (the helm test pod, which runs `at-orchestrator status`). Each role has its own NATS user
under the shipped bus permissions (deploy/nats/), so each reads its own keys of nats.auth.existingSecret.
Files are mounted read-only under /etc/at-orchestrator and the *_FILE variables point at them.
*/}}

{{- define "at-orchestrator.controlSecretName" -}}
{{- default (printf "%s-control" (include "at-orchestrator.fullname" .)) .Values.controlPlane.existingSecret }}
{{- end }}

{{/* Environment of one role: (dict "root" $ "role" "worker"). */}}
{{- define "at-orchestrator.securityEnv" -}}
{{- $root := .root }}
{{- $role := .role }}
{{- $nats := $root.Values.nats }}
{{- $redis := $root.Values.redis }}
{{- $method := $nats.auth.method }}
{{- if eq $method "password" }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ $nats.auth.existingSecret }}
      key: {{ $role }}-user
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $nats.auth.existingSecret }}
      key: {{ $role }}-password
{{- else if eq $method "token" }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $nats.auth.existingSecret }}
      key: token
{{- else if eq $method "nkey" }}
- name: NATS_NKEY_SEED_FILE
  value: /etc/at-orchestrator/nats-auth/{{ $role }}.nk
{{- else if eq $method "creds" }}
- name: NATS_CREDS_FILE
  value: /etc/at-orchestrator/nats-auth/{{ $role }}.creds
{{- end }}
{{- if $nats.tls.existingSecret }}
- name: NATS_TLS_CA_FILE
  value: /etc/at-orchestrator/nats-tls/ca.crt
{{- if $nats.tls.clientCertificate }}
- name: NATS_TLS_CERT_FILE
  value: /etc/at-orchestrator/nats-tls/tls.crt
- name: NATS_TLS_KEY_FILE
  value: /etc/at-orchestrator/nats-tls/tls.key
{{- end }}
{{- if $nats.tls.required }}
- name: NATS_TLS_REQUIRED
  value: "true"
{{- end }}
{{- end }}
{{- /* The operator role talks to the leader over NATS only: no Redis, no cluster secret. */}}
{{- if ne $role "operator" }}
{{- if $redis.auth.existingSecret }}
- name: REDIS_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $redis.auth.existingSecret }}
      key: username
      optional: true
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.auth.existingSecret }}
      key: password
{{- if $redis.sentinels }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.auth.existingSecret }}
      key: sentinel-password
      optional: true
{{- end }}
{{- end }}
{{- if $redis.tls.existingSecret }}
- name: REDIS_TLS_CA_FILE
  value: /etc/at-orchestrator/redis-tls/ca.crt
{{- if $redis.tls.clientCertificate }}
- name: REDIS_TLS_CERT_FILE
  value: /etc/at-orchestrator/redis-tls/tls.crt
- name: REDIS_TLS_KEY_FILE
  value: /etc/at-orchestrator/redis-tls/tls.key
{{- end }}
{{- end }}
- name: CLUSTER_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "at-orchestrator.controlSecretName" $root }}
      key: CLUSTER_SECRET
- name: CLUSTER_SECRET_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ include "at-orchestrator.controlSecretName" $root }}
      key: CLUSTER_SECRET_PREVIOUS
      optional: true
{{- end }}
{{- /* Workers verify the leader with CLUSTER_SECRET; only whoever answers operators needs OPERATOR_TOKEN. */}}
{{- if or (ne $role "worker") $root.Values.worker.embeddedCoordinator }}
- name: OPERATOR_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "at-orchestrator.controlSecretName" $root }}
      key: OPERATOR_TOKEN
{{- end }}
{{- end }}

{{/* Volume mounts of one role: (dict "root" $ "role" "worker"). */}}
{{- define "at-orchestrator.securityMounts" -}}
{{- $root := .root }}
{{- if has $root.Values.nats.auth.method (list "nkey" "creds") }}
- name: nats-auth
  mountPath: /etc/at-orchestrator/nats-auth
  readOnly: true
{{- end }}
{{- if $root.Values.nats.tls.existingSecret }}
- name: nats-tls
  mountPath: /etc/at-orchestrator/nats-tls
  readOnly: true
{{- end }}
{{- if and (ne .role "operator") $root.Values.redis.tls.existingSecret }}
- name: redis-tls
  mountPath: /etc/at-orchestrator/redis-tls
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes of one role: (dict "root" $ "role" "worker"). Only the role's own credential file is projected
from nats.auth.existingSecret, so a worker pod never holds the coordinator's.
*/}}
{{- define "at-orchestrator.securityVolumes" -}}
{{- $root := .root }}
{{- $nats := $root.Values.nats }}
{{- if has $nats.auth.method (list "nkey" "creds") }}
{{- $file := printf "%s.%s" .role (ternary "nk" "creds" (eq $nats.auth.method "nkey")) }}
- name: nats-auth
  secret:
    secretName: {{ $nats.auth.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ $file }}
        path: {{ $file }}
{{- end }}
{{- if $nats.tls.existingSecret }}
- name: nats-tls
  secret:
    secretName: {{ $nats.tls.existingSecret }}
    defaultMode: 0400
    items:
      - key: ca.crt
        path: ca.crt
      {{- if $nats.tls.clientCertificate }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- if and (ne .role "operator") $root.Values.redis.tls.existingSecret }}
- name: redis-tls
  secret:
    secretName: {{ $root.Values.redis.tls.existingSecret }}
    defaultMode: 0400
    items:
      - key: ca.crt
        path: ca.crt
      {{- if $root.Values.redis.tls.clientCertificate }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- end }}

{{/* Checks of these values that values.schema.json cannot express. */}}
{{- define "at-orchestrator.validateSecurity" -}}
{{- if and (ne .Values.nats.auth.method "none") (not .Values.nats.auth.existingSecret) }}
{{- fail (printf "nats.auth.method=%s needs nats.auth.existingSecret: the Secret holding each role's NATS credential (see docs/deploy.md)" .Values.nats.auth.method) }}
{{- end }}
{{- if and .Values.nats.tls.clientCertificate (not .Values.nats.tls.existingSecret) }}
{{- fail "nats.tls.clientCertificate needs nats.tls.existingSecret: the Secret holding ca.crt, tls.crt and tls.key" }}
{{- end }}
{{- if and .Values.redis.tls.clientCertificate (not .Values.redis.tls.existingSecret) }}
{{- fail "redis.tls.clientCertificate needs redis.tls.existingSecret: the Secret holding ca.crt, tls.crt and tls.key" }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- range $peer := list "nats" "redis" "metricsScraper" }}
{{- $p := index $.Values.networkPolicy $peer }}
{{- if not (or $p.namespaceSelector $p.podSelector) }}
{{- fail (printf "networkPolicy.%s needs a namespaceSelector or a podSelector (or both): an empty peer would let every pod in the namespace through" $peer) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* A NetworkPolicy peer from a selector pair of values (both given: the pods must match both). */}}
{{- define "at-orchestrator.networkPeer" -}}
{{- with .namespaceSelector }}
namespaceSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .podSelector }}
podSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
