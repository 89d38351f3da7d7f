{{/* Names, labels and the per-service environment shared by every template. */}}

{{- define "livecast.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The services, as (values key, component name) pairs; templates range over them. */}}
{{- define "livecast.components" -}}
catalogue: catalogue
ingest: ingest
encodeWorker: encode-worker
streamingEdge: streaming-edge
notification: notification
{{- end -}}

{{/* Labels of one component; call with (dict "root" $ "component" "ingest"). */}}
{{- define "livecast.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "livecast.labels" -}}
{{ include "livecast.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
livecast.io/region: {{ .root.Values.region | quote }}
{{- end -}}

{{- define "livecast.image" -}}
{{ .root.Values.image.registry }}/livecast-{{ .component }}:{{ .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- end -}}

{{- define "livecast.catalogueEndpoint" -}}
http://{{ include "livecast.fullname" . }}-catalogue:50051
{{- end -}}

{{/* Where mounted secrets live inside the containers. */}}
{{- define "livecast.secretDir" -}}/var/run/secrets/livecast{{- end -}}

{{/* LIVECAST_* variables every service reads. */}}
{{- define "livecast.env.common" -}}
{{- $v := .root.Values -}}
{{- $svc := index $v .key -}}
LIVECAST_REGION: {{ $v.region | quote }}
LIVECAST_HTTP__ADDR: "0.0.0.0:8080"
LIVECAST_HTTP__DRAIN_SECONDS: {{ $svc.drainSeconds | quote }}
LIVECAST_BUS__KIND: kafka
LIVECAST_BUS__BROKERS: {{ $v.bus.brokers | quote }}
LIVECAST_BUS__CLIENT_ID: {{ printf "%s-%s" $v.bus.clientId .component | quote }}
LIVECAST_BUS__REPLICATION_FACTOR: {{ $v.bus.replicationFactor | quote }}
RUST_LOG: {{ $v.logFilter | quote }}
{{- end -}}

{{- define "livecast.env.blob" -}}
{{- $v := .root.Values -}}
LIVECAST_BLOB__KIND: s3
LIVECAST_BLOB__BUCKET: {{ $v.blob.bucket | quote }}
LIVECAST_BLOB__REGION: {{ $v.blob.s3Region | quote }}
{{- with $v.blob.endpoint }}
LIVECAST_BLOB__ENDPOINT: {{ . | quote }}
{{- end }}
LIVECAST_BLOB__SECRET_ACCESS_KEY_FILE: {{ include "livecast.secretDir" . }}/s3/secret-access-key
{{- end -}}

{{- define "livecast.env.catalogue" -}}
{{- $v := .root.Values -}}
LIVECAST_GRPC_ADDR: "0.0.0.0:50051"
LIVECAST_TOPIC_PARTITIONS: {{ $v.bus.topicPartitions | quote }}
LIVECAST_ADMIN_TOKEN_FILE: {{ include "livecast.secretDir" . }}/admin/token
LIVECAST_PUBLIC_URLS__RTMP_BASE: {{ $v.publicUrls.rtmpBase | quote }}
LIVECAST_PUBLIC_URLS__HLS_PUSH_BASE: {{ $v.publicUrls.hlsPushBase | quote }}
LIVECAST_PUBLIC_URLS__PLAYBACK_BASE: {{ $v.publicUrls.playbackBase | quote }}
LIVECAST_METADATA__KIND: scylla
LIVECAST_METADATA__NODES: {{ printf "[%s]" (join "," $v.metadata.nodes) | quote }}
LIVECAST_METADATA__KEYSPACE: {{ $v.metadata.keyspace | quote }}
LIVECAST_METADATA__LOCAL_DATACENTER: {{ $v.metadata.localDatacenter | quote }}
LIVECAST_METADATA__REPLICATION_FACTOR: {{ $v.metadata.replicationFactor | quote }}
{{- if $v.metadata.username }}
LIVECAST_METADATA__USERNAME: {{ $v.metadata.username | quote }}
LIVECAST_METADATA__PASSWORD_FILE: {{ include "livecast.secretDir" . }}/scylla/password
{{- end }}
{{- end -}}

{{- define "livecast.env.ingest" -}}
{{- $v := .root.Values -}}
LIVECAST_RTMP_ADDR: "0.0.0.0:1935"
LIVECAST_GRPC_ADDR: "0.0.0.0:50052"
LIVECAST_CATALOGUE_ENDPOINT: {{ include "livecast.catalogueEndpoint" .root | quote }}
{{- /* Given explicitly: a partial [http] section would otherwise fall back to a 1 MiB body limit. */}}
LIVECAST_HTTP__MAX_BODY_BYTES: {{ $v.ingest.maxPushBytes | int64 | quote }}
LIVECAST_INGEST__MAX_PUSH_BYTES: {{ $v.ingest.maxPushBytes | int64 | quote }}
LIVECAST_INGEST__RECONNECT_WINDOW_MS: {{ $v.ingest.reconnectWindowMs | int64 | quote }}
LIVECAST_INGEST__TOPIC_PARTITIONS: {{ $v.bus.topicPartitions | quote }}
{{ include "livecast.env.blob" . }}
{{- end -}}

{{- define "livecast.env.encodeWorker" -}}
{{- $v := .root.Values -}}
LIVECAST_WORKER__CONCURRENCY: {{ $v.encodeWorker.concurrency | quote }}
LIVECAST_WORKER__PRESET: {{ $v.encodeWorker.preset | quote }}
LIVECAST_WORKER__LOW_LATENCY: {{ $v.encodeWorker.lowLatency | quote }}
LIVECAST_WORKER__PART_TARGET_MS: {{ $v.encodeWorker.partTargetMs | int64 | quote }}
LIVECAST_GRPC_ADDR: "0.0.0.0:50053"
LIVECAST_WORKER__STANDBY: {{ $v.encodeWorker.standby | quote }}
LIVECAST_WORKER__STANDBY_LEASE_MS: {{ $v.encodeWorker.standbyLeaseMs | int64 | quote }}
LIVECAST_WORKER__X264_THREADS: {{ $v.encodeWorker.x264Threads | int64 | quote }}
{{ include "livecast.env.blob" . }}
{{- end -}}

{{- define "livecast.env.streamingEdge" -}}
{{- $v := .root.Values -}}
LIVECAST_CATALOGUE_ENDPOINT: {{ include "livecast.catalogueEndpoint" .root | quote }}
LIVECAST_EDGE__CACHE_BYTES: {{ $v.streamingEdge.cacheBytes | int64 | quote }}
LIVECAST_EDGE__LIVE_WINDOW_SEGMENTS: {{ $v.streamingEdge.liveWindowSegments | quote }}
LIVECAST_EDGE__TOPIC_PARTITIONS: {{ $v.bus.topicPartitions | quote }}
{{ include "livecast.env.blob" . }}
{{- end -}}

{{- define "livecast.env.notification" -}}
{{- $v := .root.Values -}}
LIVECAST_ADMIN_TOKEN_FILE: {{ include "livecast.secretDir" . }}/admin/token
LIVECAST_NOTIFICATION__DATA_FILE: /var/lib/livecast/notification.sqlite
LIVECAST_NOTIFICATION__PLAYBACK_BASE: {{ $v.publicUrls.playbackBase | quote }}
LIVECAST_NOTIFICATION__TOPIC_PARTITIONS: {{ $v.bus.topicPartitions | quote }}
{{- end -}}

{{/* The whole environment of one component as a dict: common, its own, then the operator's
     `env` entries, which win. */}}
{{- define "livecast.env" -}}
{{- $svc := index .root.Values .key -}}
{{- $base := fromYaml (printf "%s\n%s" (include "livecast.env.common" .) (include (printf "livecast.env.%s" .key) .)) -}}
{{- $all := merge (deepCopy ($svc.env | default dict)) $base -}}
{{- range $name, $value := $all }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
