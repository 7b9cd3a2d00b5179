"""The plan: a parsed Pipeline spec turned into engine steps that run actions (build), and
the whole check of a manifest that ends in one (validate). It sits above kubesteps.actions
and kubesteps.pipeline (the spec), so an action may read the spec and the spec never imports
an action."""
