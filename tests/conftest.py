"""Fixtures shared by every test package: the API emulator and the operator runner."""

pytest_plugins = ["kubesteps.testing.pytest_plugin"]
