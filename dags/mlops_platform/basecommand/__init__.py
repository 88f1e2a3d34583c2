"""The NVIDIA Base Command Platform (NGC) backend of run_job and gpu_sweep; import each name from the
module that owns it (this package re-exports nothing):

- `spec`: one job's inputs validated (`job_spec()` -> `JobSpec`, the job-create body), the name
  rules, `parse_result()` (the `MLOPS_RESULT {json}` line a job logs), `BaseCommandConfigError`.
- `client`: the connection's credentials (`NgcCredentials`) and the async REST client
  (`BaseCommandClient`: token, dataset lookup, job create/status/kill/log), the job states.
- `settings`: the chart's basecommand.json (`load_basecommand()` -> `BaseCommandSettings`, validated
  by the schema the chart ships beside it) and the backend choice (`check_choice()`, `job_settings()`).
- `operator`: `BaseCommandJobOperator` (deferrable) and its trigger; `basecommand_job()`.

The Params of the backend (`backend_param`, `ngc_image_param`, `datasets_param`) are in
`mlops_platform.params` with every other Param.
"""
