// The program of the real node's two local images (scripts/cluster/images.py): the pod
// sandbox ("pause") and the probe image the real-node tests run. Standard library only.
module airflow-mlops/tools/control-plane/nodeimage

go 1.25.0
