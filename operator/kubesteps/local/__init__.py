"""Running Pipelines without a cluster: kubesteps run and kubesteps demo."""
