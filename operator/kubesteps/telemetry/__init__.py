"""Telemetry: tracing set-up (`tracing`), log format and trace correlation (`logs`), and
Prometheus metrics (`metrics`).

This package module imports nothing on purpose: the engine may import a submodule of
`kubesteps.telemetry` and must stay free of the SDK, exporters and prometheus-client.
Import the submodule you need.
"""
