{{- /*
Development-only setups are refused unless a value whose name says so accepts them: the
official chart's bundled PostgreSQL (a deprecated Bitnami image line, the password `postgres`
rendered into a Secret) needs development.unsafeBundledPostgresql=true; MLflow on sqlite needs
mlflow.backendStore.sqlite.developmentOnly=true (checked with the backend store, _mlflow.tpl).
NOTES.txt repeats the warning for a release that accepted them.
*/ -}}
{{- define "airflow-mlops.checks.unsafe" }}
{{- $af := .Values.airflow }}
{{- if and $af.enabled (dig "postgresql" "enabled" false $af) (not .Values.development.unsafeBundledPostgresql) }}
{{- include "airflow-mlops.checks.refuse" "airflow.postgresql.enabled=true renders the official chart's bundled PostgreSQL: an image of the deprecated docker.io/bitnamilegacy line and the database password `postgres` in a Secret the chart writes. It is refused unless development.unsafeBundledPostgresql=true says this is a development setup. Otherwise keep airflow.postgresql.enabled=false and give Airflow's database in the Secret of airflow.data.metadataSecretName (key `connection`), or on a development cluster use devDatabase (values/kind.yaml)." }}
{{- end }}
{{- if and $af.enabled .Values.development.unsafeBundledPostgresql (dig "postgresql" "enabled" false $af) (dig "data" "metadataSecretName" "" $af) }}
{{- include "airflow-mlops.checks.refuse" (printf "development.unsafeBundledPostgresql=true with airflow.data.metadataSecretName=%q: Airflow would read its database from that Secret, not from the bundled PostgreSQL. Set airflow.data.metadataSecretName=null to use the bundled one." (dig "data" "metadataSecretName" "" $af)) }}
{{- end }}
{{- end }}
