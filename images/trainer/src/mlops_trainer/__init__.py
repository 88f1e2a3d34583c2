"""Task code of the airflow-mlops training pipeline (console script `mlops-trainer`).

Every step reads and writes the run workspace given with `--workspace`; the steps of one
pipeline run share that directory (the pod templates mount `/workspace` with a per-run
sub-path) and hand over through small JSON files in it:

    prepare   -> data/train.csv, data/test.csv, prepare.json
    train     -> train.json     (MLflow run id, logged model URI)
    evaluate  -> evaluate.json  (test metrics, also logged to the run)
    register  -> register.json  (model version, aliases)
    predict   -> predictions.csv
"""

__version__ = "0.1.0"
