{{- /*
pipelines.schedules: every key must be a DAG the platform runs (a scheduled DAG of dags/, listed in
files/dag-ids.json, or one of pipelines.dagIds for DAGs of your own) and every value an
expression Airflow's cron parser (croniter) accepts, with five fields (croniter would also take a
sixth, seconds, which Airflow's schedules do not use). The cron grammar lives here, once;
tests/chart/test_values_checks.py compares its verdicts with croniter's.
*/ -}}
{{- define "airflow-mlops.checks.schedules" }}
{{- $ids := .Files.Get "files/dag-ids.json" | fromJson }}
{{- $shipped := $ids.scheduled }}
{{- $known := concat $shipped (.Values.pipelines.dagIds | default list) }}
{{- range $dagId, $expr := (.Values.pipelines.schedules | default dict) }}
{{- if has $dagId $ids.triggered }}
{{- include "airflow-mlops.checks.refuse" (printf "pipelines.schedules.%s: the DAG %s runs only when triggered (its schedule is fixed in the DAG file), so this schedule would never be used. Allowed: %s, or the id of a DAG of your own listed in pipelines.dagIds." $dagId $dagId (join ", " $shipped)) }}
{{- else if not (has $dagId $known) }}
{{- include "airflow-mlops.checks.refuse" (printf "pipelines.schedules.%s: no DAG has the id %q, so this schedule would never be used. Allowed: the scheduled DAGs of dags/ (%s), or the id of a DAG of your own listed in pipelines.dagIds (now: %s)." $dagId $dagId (join ", " $shipped) (join ", " ($.Values.pipelines.dagIds | default (list "none")))) }}
{{- end }}
{{- $problem := include "airflow-mlops.cronProblem" (toString $expr) }}
{{- if $problem }}
{{- include "airflow-mlops.checks.refuse" (printf "pipelines.schedules.%s=%q is not a schedule: %s. Allowed: a preset (@once, @hourly, @daily, @weekly, @monthly, @quarterly, @yearly) or a cron expression of five fields, minute (0-59) hour (0-23) day of month (1-31, L) month (1-12, jan-dec) day of week (0-7, sun-sat, 0 and 7 = Sunday), each `*`, a value, a range a-b, a list a,b or a step */n, a-b/n (for example \"0 2 * * *\" = daily at 02:00 UTC)." $dagId (toString $expr) $problem) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Why a schedule is not one Airflow accepts, empty when it is. Usage:
include "airflow-mlops.cronProblem" "0 25 * * *"  ->  `hour: 25 is outside 0-23`
*/}}
{{- define "airflow-mlops.cronProblem" -}}
{{- $expr := trim . }}
{{- $presets := list "@once" "@hourly" "@daily" "@weekly" "@monthly" "@quarterly" "@yearly" }}
{{- if hasPrefix "@" $expr }}
{{- if not (has $expr $presets) }}{{ printf "%s is not a preset" $expr }}{{ end }}
{{- else }}
{{- $fields := regexSplit "\\s+" $expr -1 }}
{{- if ne (len $fields) 5 }}
{{- printf "it has %d fields, a cron expression has 5" (len $fields) }}
{{- else }}
{{- $months := dict "jan" 1 "feb" 2 "mar" 3 "apr" 4 "may" 5 "jun" 6 "jul" 7 "aug" 8 "sep" 9 "oct" 10 "nov" 11 "dec" 12 }}
{{- $days := dict "sun" 0 "mon" 1 "tue" 2 "wed" 3 "thu" 4 "fri" 5 "sat" 6 }}
{{- $specs := list (dict "name" "minute" "min" 0 "max" 59 "names" dict) (dict "name" "hour" "min" 0 "max" 23 "names" dict) (dict "name" "day of month" "min" 1 "max" 31 "names" dict) (dict "name" "month" "min" 1 "max" 12 "names" $months) (dict "name" "day of week" "min" 0 "max" 7 "names" $days) }}
{{- $problems := list }}
{{- range $i, $field := $fields }}
{{- $s := index $specs $i }}
{{- range $item := splitList "," $field }}
{{- $item = lower $item }}
{{- $m := regexFindAll "^(\\*|[0-9a-z]+)(-([0-9a-z]+))?(/([0-9]+))?$" $item 1 }}
{{- if or (and (eq $i 2) (eq $item "l")) (and (or (eq $i 2) (eq $i 4)) (eq $item "?")) }}
{{- else if and (eq $i 4) (regexMatch "^([0-7]|sun|mon|tue|wed|thu|fri|sat)(#[1-5]|l)$" $item) }}
{{- else if not $m }}
{{- $problems = append $problems (printf "%s: %q is not a value, range, list or step" $s.name $item) }}
{{- else }}
{{- $start := regexReplaceAll "^(\\*|[0-9a-z]+)(-([0-9a-z]+))?(/([0-9]+))?$" $item "${1}" }}
{{- $end := regexReplaceAll "^(\\*|[0-9a-z]+)(-([0-9a-z]+))?(/([0-9]+))?$" $item "${3}" }}
{{- $step := regexReplaceAll "^(\\*|[0-9a-z]+)(-([0-9a-z]+))?(/([0-9]+))?$" $item "${5}" }}
{{- $bounds := list }}
{{- range $v := list $start $end }}
{{- if and $v (ne $v "*") }}
{{- if regexMatch "^[0-9]+$" $v }}
{{- $n := atoi $v }}
{{- if or (lt $n (int $s.min)) (gt $n (int $s.max)) }}
{{- $problems = append $problems (printf "%s: %s is outside %d-%d" $s.name $v (int $s.min) (int $s.max)) }}
{{- end }}
{{- $bounds = append $bounds $n }}
{{- else if hasKey $s.names $v }}
{{- $bounds = append $bounds (int (get $s.names $v)) }}
{{- else }}
{{- $problems = append $problems (printf "%s: %q is not a number%s" $s.name $v (ternary "" " or a name" (empty $s.names))) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq $start "*") $end }}
{{- $problems = append $problems (printf "%s: %q is not a range (a-b)" $s.name $item) }}
{{- end }}
{{- if and $step (or (lt (atoi $step) 1) (gt (atoi $step) (int $s.max))) }}
{{- $problems = append $problems (printf "%s: the step /%s is outside 1-%d" $s.name $step (int $s.max)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- join "; " $problems }}
{{- end }}
{{- end }}
{{- end }}
