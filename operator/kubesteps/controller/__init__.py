"""The operator: kopf handlers, the reconciler, leader election, logging in."""
