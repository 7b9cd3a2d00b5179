{{/* Chart name, shortened to the 63 characters a label value allows. */}}
{{- define "kubesteps.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: the release name, plus the chart name unless it already has it. */}}
{{- define "kubesteps.fullname" -}}
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

{{- define "kubesteps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubesteps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubesteps.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubesteps.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kubesteps.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubesteps.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's ServiceAccount, as the subject of its (Cluster)RoleBindings. */}}
{{- define "kubesteps.subjects" -}}
- kind: ServiceAccount
  name: {{ include "kubesteps.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{- define "kubesteps.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's rules on namespaced resources: the same list serves the ClusterRole
(all namespaces) and each namespace's Role, so the two modes cannot drift apart.
*/}}
{{- define "kubesteps.namespacedRules" -}}
# A pipeline step creates its child Pipeline (in the parent's namespace, owned by it) and
# passes a cancel or retry on to it with an annotation.
- apiGroups: ["kubesteps.dev"]
  resources: ["pipelines"]
  verbs: ["get", "list", "watch", "patch", "create"]
# A uses step expands a PipelineTemplate of the Pipeline's namespace, read at each pass.
- apiGroups: ["kubesteps.dev"]
  resources: ["pipelinetemplates"]
  verbs: ["get"]
# Status is written with merge patches only, and read with the Pipeline itself.
- apiGroups: ["kubesteps.dev"]
  resources: ["pipelines/status"]
  verbs: ["patch"]
# Owned objects carry blockOwnerDeletion: true, which the OwnerReferencesPermissionEnforcement
# admission plugin (OpenShift, hardened clusters) allows only to who may update the owner's
# finalizers.
- apiGroups: ["kubesteps.dev"]
  resources: ["pipelines/finalizers"]
  verbs: ["update"]
# Step events are created, never patched (kopf's own event posting is off); a job step
# lists the Warning Events of a Pod that does not start, to say why in its message.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
# A job step reads its Job's Pods: the termination message (its results), why a Pod does
# not start (scheduling, image pulls), and the last lines of the log (status logTail).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# The job action lists a step's Jobs by label and creates the next one; the operator deletes
# a Job whose attempt timed out or whose run was cancelled or superseded (finished ones go
# by TTL and garbage collection).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "list", "delete"]
# The http action reads the Secret a step names (and sends it only when it is labelled
# kubesteps.dev/http-credential=true).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- if .Values.mutex.enabled }}
# spec.mutex: each mutex is a Lease kubesteps-mutex-<name> in the Pipeline's namespace,
# read, created once, then written with conditional merge patches.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "patch"]
{{- end }}
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* kopf's cluster-scoped reads: the namespace observer and the CRD scan/rescan. */}}
{{- define "kubesteps.clusterScopedRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
Checks across values that a JSON schema cannot explain well; each failure says what to change.
*/}}
{{- define "kubesteps.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: more than one replica needs leader election (set leaderElection.enabled=true), or the pods would reconcile the same Pipelines at once" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (le (int .Values.replicaCount) 1) }}
{{- fail "podDisruptionBudget.enabled needs replicaCount > 1: a budget over a single pod blocks every node drain" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be less than replicaCount (%d), or no pod may ever be evicted" (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (eq (int .Values.metrics.port) 0) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.port > 0: there is nothing to scrape with metrics off" }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.healthPort) }}
{{- fail (printf "metrics.port and healthPort are both %d: the metrics and liveness endpoints need different ports" (int .Values.healthPort)) }}
{{- end }}
{{- if and .Values.approvals.policy.enabled (not .Values.approvals.policy.groups) }}
{{- fail "approvals.policy.enabled needs approvals.policy.groups: the groups whose members may approve, retry, rerun and cancel (with none, nobody could)" }}
{{- end }}
{{- if not .Values.rbac.allowWildcards }}
{{- range $i, $rule := .Values.rbac.extraRules }}
{{- range $field := list "apiGroups" "resources" "verbs" }}
{{- range (get $rule $field | default list) }}
{{- if contains "*" . }}
{{- fail (printf "rbac.extraRules[%d].%s contains the wildcard %q: name the API groups, resources and verbs your Pipelines need, or set rbac.allowWildcards=true to grant it deliberately" $i $field .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
