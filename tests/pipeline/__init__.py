"""Tests for kubesteps.pipeline: spec model, validation, CEL, CRD and the CLI around them."""
