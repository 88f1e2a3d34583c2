# shellcheck shell=bash
# The Secrets values/kind.yaml refers to, created by scripts/kind-up (sourced there, after the
# namespace exists). Passwords are random, generated on the first run and then read back from
# the cluster: they never touch the disk or the repository, and a second run changes nothing.

# Names: values/kind.yaml (devDatabase.auth.existingSecret, airflow.data.metadataSecretName).
DEV_DB_SECRET=mlops-dev-database
AIRFLOW_METADATA_SECRET=mlops-airflow-metadata
ADMIN_SECRET=mlops-kind-admin
# The official chart would otherwise render random JWT/API keys on every `helm upgrade` (and
# restart every Airflow pod on each kind-up): kind-up keeps them in Secrets of its own, passed
# as airflow.{fernetKeySecretName,apiSecretKeySecretName,jwtSecretName} (data keys as the
# official chart 1.20.0 expects them).
FERNET_SECRET=mlops-airflow-fernet-key
API_SECRET=mlops-airflow-api-secret-key
JWT_SECRET=mlops-airflow-jwt-secret
# MLflow's basic-auth app (mlflow.auth.existingSecret, the clients' credential of Airflow and
# the task pods too: same namespace) and, in the serving namespace, the model servers' copy of
# the clients' credential (username, password) and the ingress basic auth of the model endpoints
# (serving.auth.existingSecret, read by ingress-nginx in the Ingress's namespace: an htpasswd
# line in key `auth`; the plain password in key `password` for tests/kind).
MLFLOW_AUTH_SECRET=mlflow-auth
SERVING_AUTH_SECRET=model-serving-auth
SERVING_AUTH_USER=kind
DEV_DB_HOST=$KIND_RELEASE-airflow-mlops-dev-database.$KIND_NAMESPACE.svc.cluster.local
DEV_DB_USER=airflow

# create_literal_secret_once <name> <key> <value-command...>: the value is computed only when
# the Secret does not exist yet, and passed to kubectl on stdin (never on a command line).
create_literal_secret_once() {
  local name=$1 key=$2
  shift 2
  if secret_exists "$name"; then
    log "secret $(secret_ns)/$name exists: kept"
    return 0
  fi
  "$@" | kc create secret generic "$name" -n "$(secret_ns)" --from-file="$key=/dev/stdin" >/dev/null
  kc label secret "$name" -n "$(secret_ns)" app.kubernetes.io/part-of=airflow-mlops-kind >/dev/null
  log "secret $(secret_ns)/$name created"
}

print_password() { printf '%s' "$(random_password)"; }
# A Fernet key: URL-safe base64 of 32 random bytes.
print_fernet_key() { openssl rand -base64 32 | tr '+/' '-_' | tr -d '\n'; }
print_metadata_uri() {
  printf 'postgresql://%s:%s@%s:5432/airflow' "$DEV_DB_USER" "$(secret_value "$DEV_DB_SECRET" password)" "$DEV_DB_HOST"
}

# create_env_secret_once <name> <print-command...>: a Secret with several keys, from KEY=value
# lines the command prints (computed only when the Secret does not exist; passed on stdin).
create_env_secret_once() {
  local name=$1
  shift
  if secret_exists "$name"; then
    log "secret $(secret_ns)/$name exists: kept"
    return 0
  fi
  "$@" | kc create secret generic "$name" -n "$(secret_ns)" --from-env-file=/dev/stdin >/dev/null
  kc label secret "$name" -n "$(secret_ns)" app.kubernetes.io/part-of=airflow-mlops-kind >/dev/null
  log "secret $(secret_ns)/$name created"
}

# MLflow server: admin user, its password and the Flask secret key.
print_mlflow_auth() {
  printf 'username=admin\npassword=%s\nflask-secret-key=%s\n' "$(random_password)" "$(random_password)"
}

# The model servers' MLflow credential: the user and password of $MLFLOW_AUTH_SECRET in
# $KIND_NAMESPACE (no Flask secret key: only the server needs it).
print_mlflow_client_auth() {
  printf 'username=%s\npassword=%s\n' \
    "$(SECRET_NS=$KIND_NAMESPACE secret_value "$MLFLOW_AUTH_SECRET" username)" \
    "$(SECRET_NS=$KIND_NAMESPACE secret_value "$MLFLOW_AUTH_SECRET" password)"
}

# Model endpoints: an apr1 htpasswd line for ingress-nginx (key auth) and the plain password.
print_serving_auth() {
  local password
  password=$(random_password)
  printf 'auth=%s:%s\npassword=%s\n' "$SERVING_AUTH_USER" \
    "$(printf '%s' "$password" | openssl passwd -apr1 -stdin)" "$password"
}

ensure_platform_secrets() {
  create_literal_secret_once "$DEV_DB_SECRET" password print_password
  create_literal_secret_once "$AIRFLOW_METADATA_SECRET" connection print_metadata_uri
  create_literal_secret_once "$ADMIN_SECRET" password print_password
  create_literal_secret_once "$FERNET_SECRET" fernet-key print_fernet_key
  create_literal_secret_once "$API_SECRET" api-secret-key print_password
  create_literal_secret_once "$JWT_SECRET" jwt-secret print_password
  create_env_secret_once "$MLFLOW_AUTH_SECRET" print_mlflow_auth
  SECRET_NS=$KIND_SERVING_NAMESPACE create_env_secret_once "$MLFLOW_AUTH_SECRET" print_mlflow_client_auth
  SECRET_NS=$KIND_SERVING_NAMESPACE create_env_secret_once "$SERVING_AUTH_SECRET" print_serving_auth
}

# write_generated_values <file>: a values file (mode 0600, in kind-up's temporary directory)
# with the names of those Secrets (the same as values/kind.yaml). Nothing secret is in it: the
# admin password is read from $ADMIN_SECRET by the create-user Job itself (values/kind.yaml).
write_generated_values() {
  (
    umask 077
    cat >"$1" <<VALUES
airflow:
  fernetKeySecretName: $FERNET_SECRET
  apiSecretKeySecretName: $API_SECRET
  jwtSecretName: $JWT_SECRET
VALUES
  )
}

# create_secrets: the namespaces (the model servers' enforces Pod Security restricted) and the
# Secrets values/kind.yaml expects (generated once, only in the cluster).
create_secrets() {
  step secrets "namespaces $KIND_NAMESPACE, $KIND_SERVING_NAMESPACE and the Secrets values/kind.yaml expects"
  local ns
  for ns in "$KIND_NAMESPACE" "$KIND_SERVING_NAMESPACE"; do
    kc get namespace "$ns" >/dev/null 2>&1 || kc create namespace "$ns" >/dev/null
  done
  kc label namespace "$KIND_SERVING_NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  ensure_platform_secrets
}
