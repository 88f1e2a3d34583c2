{{- /*
The values' JSON Schema (files/values.schema.json, draft-07), checked here rather than by helm.
Helm validates a chart's root values.schema.json before any template runs and prints the
validator's own form (`at '/images/trainer/tag': 'not' failed`, a raw regular expression); it has
no custom messages. So the chart ships its schema as a file and this template applies it: the
same keywords with the same meaning (Go's regexp, as helm's validator uses), and one sentence per
refusal naming the key, the value and what is allowed. The allowed form of a `pattern` is the
node's `patternErrorMessage`, of a `not`, `oneOf`, `contains` or closed map the node's
`errorMessage` (the names editors' JSON/YAML language servers show too); every other keyword
(type, enum, const, minimum, maximum, lengths, required, unknown keys) says it itself. Every rule
lives in the schema only; tests/values/test_schema_messages.py walks the schema and proves each.
Usage: include "airflow-mlops.checks.schema" . (one refusal per problem, airflow-mlops.checks.refuse)
*/ -}}
{{- define "airflow-mlops.checks.schema" -}}
{{- $root := .Files.Get "files/values.schema.json" | fromJson -}}
{{- if not $root -}}
{{- include "airflow-mlops.checks.refuse" "files/values.schema.json is missing from the chart or is not JSON: the values cannot be checked." -}}
{{- else -}}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" $root "v" .Values "p" "") -}}
{{- end -}}
{{- end }}

{{- /* The JSON type of a value: null, boolean, string, object, array, integer or number. */ -}}
{{- define "airflow-mlops.schema.type" -}}
{{- if kindIs "invalid" . }}null
{{- else if kindIs "bool" . }}boolean
{{- else if kindIs "string" . }}string
{{- else if kindIs "map" . }}object
{{- else if kindIs "slice" . }}array
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) }}integer
{{- else if kindIs "float64" . }}{{ ternary "integer" "number" (eq (floor .) (float64 .)) }}
{{- else }}{{ kindOf . }}{{ end }}
{{- end }}

{{- /* A value as the user wrote it, shortened. */ -}}
{{- define "airflow-mlops.schema.show" -}}
{{- $t := include "airflow-mlops.schema.type" . }}
{{- if eq $t "integer" }}{{ int64 . }}
{{- else if eq $t "number" }}{{ . }}
{{- else }}{{ toJson . | trunc 100 }}{{ end }}
{{- end }}

{{- /* The key path of a child: a.b, a["k.with/dots"], a[0]. */ -}}
{{- define "airflow-mlops.schema.child" -}}
{{- $p := index . 0 }}{{ $k := index . 1 }}
{{- if kindIs "string" $k }}
{{- if regexMatch "^[A-Za-z_][A-Za-z0-9_-]*$" $k }}{{ ternary $k (printf "%s.%s" $p $k) (eq $p "") }}
{{- else }}{{ printf "%s[%q]" $p $k }}{{ end }}
{{- else }}{{ printf "%s[%d]" $p $k }}{{ end }}
{{- end }}

{{- /* Words for JSON types. */ -}}
{{- define "airflow-mlops.schema.typeWords" -}}
{{- $words := dict "null" "null" "boolean" "true or false" "string" "a string" "object" "a map of keys to values" "array" "a list" "integer" "a whole number" "number" "a number" }}
{{- $out := list }}
{{- range . }}{{ $out = append $out (get $words .) }}{{ end }}
{{- join " or " $out }}
{{- end }}

{{- /*
Refusals of value .v at key path .p under schema node .s (.root resolves "#/definitions/<name>").
*/ -}}
{{- define "airflow-mlops.schema.node" -}}
{{- $s := .s }}{{ $v := .v }}{{ $p := .p }}{{ $root := .root }}
{{- $key := default "the values" $p }}
{{- $show := include "airflow-mlops.schema.show" $v }}
{{- if kindIs "bool" $s }}
{{- if not $s }}{{ include "airflow-mlops.checks.refuse" (printf "%s=%s: no value is allowed here." $key $show) }}{{ end }}
{{- else if hasKey $s "$ref" }}
{{- /* draft-07: a $ref replaces its siblings */ -}}
{{- $name := trimPrefix "#/definitions/" (get $s "$ref") }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" (get $root.definitions $name) "v" $v "p" $p) }}
{{- else }}
{{- $jt := include "airflow-mlops.schema.type" $v }}
{{- $typeOk := true }}
{{- if hasKey $s "type" }}
{{- $types := get $s "type" }}
{{- if not (kindIs "slice" $types) }}{{ $types = list $types }}{{ end }}
{{- $typeOk = or (has $jt $types) (and (eq $jt "integer") (has "number" $types)) }}
{{- if not $typeOk }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is %s. Allowed: %s." $key $show (include "airflow-mlops.schema.typeWords" (list $jt)) (include "airflow-mlops.schema.typeWords" $types)) }}
{{- end }}
{{- end }}
{{- if $typeOk }}
{{- $msg := get $s "errorMessage" }}
{{- if hasKey $s "enum" }}
{{- $found := false }}
{{- range $s.enum }}{{ if eq (toJson .) (toJson $v) }}{{ $found = true }}{{ end }}{{ end }}
{{- if not $found }}
{{- $allowed := list }}{{ range $s.enum }}{{ $allowed = append $allowed (toJson .) }}{{ end }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is not one of the allowed values. Allowed: %s." $key $show (join ", " $allowed)) }}
{{- end }}
{{- end }}
{{- if and (hasKey $s "const") (ne (toJson $s.const) (toJson $v)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is refused. Allowed: only %s%s." $key $show (toJson $s.const) (ternary (printf " (%s)" $msg) "" (not (empty $msg)))) }}
{{- end }}
{{- if eq $jt "string" }}
{{- $n := len (regexFindAll "(?s)." $v -1) }}
{{- if and (hasKey $s "maxLength") (gt $n (int64 $s.maxLength)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is %d characters long. Allowed: at most %d characters." $key $show $n (int64 $s.maxLength)) }}
{{- else if and (hasKey $s "minLength") (lt $n (int64 $s.minLength)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is %d characters long. Allowed: at least %d character(s)." $key $show $n (int64 $s.minLength)) }}
{{- else if and (hasKey $s "pattern") (not (regexMatch $s.pattern $v)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is not of the allowed form. Allowed: %s." $key $show (default (printf "text matching the regular expression %s" $s.pattern) (get $s "patternErrorMessage"))) }}
{{- end }}
{{- end }}
{{- if or (eq $jt "integer") (eq $jt "number") }}
{{- $f := float64 $v }}
{{- $types := get $s "type" | default list }}
{{- if not (kindIs "slice" $types) }}{{ $types = list $types }}{{ end }}
{{- $words := include "airflow-mlops.schema.typeWords" (list (ternary "integer" "number" (has "integer" $types))) }}
{{- if and (hasKey $s "minimum") (lt $f (float64 $s.minimum)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is below the minimum. Allowed: %s >= %v." $key $show $words $s.minimum) }}
{{- end }}
{{- if and (hasKey $s "maximum") (gt $f (float64 $s.maximum)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is above the maximum. Allowed: %s <= %v." $key $show $words $s.maximum) }}
{{- end }}
{{- end }}
{{- if eq $jt "object" }}
{{- range $req := ($s.required | default list) }}
{{- if not (hasKey $v $req) }}
{{- $sub := get ($s.properties | default dict) $req }}
{{- $about := "" }}
{{- if kindIs "map" $sub }}
{{- if hasKey $sub "description" }}{{ $about = get $sub "description" }}{{ end }}
{{- if hasKey $sub "$ref" }}{{ $sub = get $root.definitions (trimPrefix "#/definitions/" (get $sub "$ref")) }}{{ end }}
{{- if and (not $about) (kindIs "map" $sub) (hasKey $sub "type") }}
{{- $t := get $sub "type" }}{{ if not (kindIs "slice" $t) }}{{ $t = list $t }}{{ end }}
{{- $about = include "airflow-mlops.schema.typeWords" (without $t "null") }}
{{- end }}
{{- end }}
{{- include "airflow-mlops.checks.refuse" (printf "%s is missing; it is required. Allowed: %s." (include "airflow-mlops.schema.child" (list $p $req)) (default "a value" (trimSuffix "." $about))) }}
{{- end }}
{{- end }}
{{- if and (hasKey $s "minProperties") (lt (len $v) (int64 $s.minProperties)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s has %d entries. Allowed: at least %d%s." $key $show (len $v) (int64 $s.minProperties) (ternary (printf " (%s)" $msg) "" (not (empty $msg)))) }}
{{- end }}
{{- $props := $s.properties | default dict }}
{{- $pprops := $s.patternProperties | default dict }}
{{- range $k := keys $v | sortAlpha }}
{{- $cv := get $v $k }}
{{- $cp := include "airflow-mlops.schema.child" (list $p $k) }}
{{- if hasKey $s "propertyNames" }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" $s.propertyNames "v" $k "p" (printf "the key name of %s" $cp)) }}
{{- end }}
{{- $matched := false }}
{{- if hasKey $props $k }}
{{- $matched = true }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" (get $props $k) "v" $cv "p" $cp) }}
{{- end }}
{{- range $re, $ps := $pprops }}
{{- if regexMatch $re $k }}
{{- $matched = true }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" $ps "v" $cv "p" $cp) }}
{{- end }}
{{- end }}
{{- if and (not $matched) (hasKey $s "additionalProperties") }}
{{- $ap := get $s "additionalProperties" }}
{{- if and (kindIs "bool" $ap) (not $ap) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s: %s is not a known key of %s. Allowed: %s." $cp (include "airflow-mlops.schema.show" $cv) (toJson $k) $key (default (printf "the keys %s" (keys $props | sortAlpha | join ", ")) $msg)) }}
{{- else }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" $ap "v" $cv "p" $cp) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $jt "array" }}
{{- if and (hasKey $s "minItems") (lt (len $v) (int64 $s.minItems)) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s has %d item(s). Allowed: at least %d." $key $show (len $v) (int64 $s.minItems)) }}
{{- end }}
{{- if $s.uniqueItems }}
{{- $seen := dict }}
{{- range $v }}
{{- $j := toJson . }}
{{- if hasKey $seen $j }}{{ include "airflow-mlops.checks.refuse" (printf "%s=%s lists %s twice. Allowed: each item once." $key $show $j) }}{{ end }}
{{- $_ := set $seen $j true }}
{{- end }}
{{- end }}
{{- if hasKey $s "items" }}
{{- range $i, $item := $v }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" $s.items "v" $item "p" (include "airflow-mlops.schema.child" (list $p $i))) }}
{{- end }}
{{- end }}
{{- if hasKey $s "contains" }}
{{- $any := false }}
{{- range $v }}
{{- if not (include "airflow-mlops.schema.node" (dict "root" $root "s" $s.contains "v" . "p" "")) }}{{ $any = true }}{{ end }}
{{- end }}
{{- if not $any }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is refused. Allowed: %s." $key $show (default (printf "a list with an item of the form %s" (toJson $s.contains)) $msg)) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $sub := ($s.allOf | default list) }}
{{- include "airflow-mlops.schema.node" (dict "root" $root "s" $sub "v" $v "p" $p) }}
{{- end }}
{{- if hasKey $s "oneOf" }}
{{- $valid := 0 }}
{{- range $sub := $s.oneOf }}
{{- if not (include "airflow-mlops.schema.node" (dict "root" $root "s" $sub "v" $v "p" $p)) }}{{ $valid = add1 $valid }}{{ end }}
{{- end }}
{{- if ne $valid 1 }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is refused. Allowed: %s." $key $show (default "exactly one of the forms this key takes" $msg)) }}
{{- end }}
{{- end }}
{{- if and (hasKey $s "not") (not (include "airflow-mlops.schema.node" (dict "root" $root "s" $s.not "v" $v "p" $p))) }}
{{- include "airflow-mlops.checks.refuse" (printf "%s=%s is refused. Allowed: %s." $key $show (default "a value of another form" $msg)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
