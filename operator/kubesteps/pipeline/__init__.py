"""The Pipeline resource: spec model, validation, CEL, and the generated CRD."""
