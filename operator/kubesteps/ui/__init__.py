"""`kubesteps ui`: a read-mostly web view of Pipelines, on 127.0.0.1, with the user's own
kubeconfig (see docs/ui.md)."""
