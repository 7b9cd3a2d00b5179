"""``kubectl_complete-kubesteps``: completion of ``kubectl kubesteps ...`` for kubectl.

kubectl (1.26 and later) completes a plugin's arguments by running
``kubectl_complete-<plugin> ARG... INCOMPLETE`` and reading cobra's ``__complete``
answer: one candidate per line (``value<TAB>description``), then ``:<directive>``
(4: do not fall back to file names). The candidates come from the click commands'
own completion: sub-commands, options, Pipeline names (from the cluster, honouring
``--kubeconfig``, ``--context`` and ``-n`` given before) and step names.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from click.shell_completion import ShellComplete

NO_FILE_COMPLETION = 4


def completions(args: Sequence[str]) -> list[str]:
    """The lines kubectl expects for ``args`` (the last one is the word being typed)."""
    from kubesteps.cli import main as cli

    words = list(args) or [""]
    completer = ShellComplete(cli, {}, "kubectl kubesteps", "_KUBECTL_KUBESTEPS_COMPLETE")
    items = completer.get_completions(words[:-1], words[-1])
    lines = []
    for item in items:
        if item.type != "plain":
            continue
        help_text = " ".join(str(item.help or "").split())
        lines.append(f"{item.value}\t{help_text}" if help_text else str(item.value))
    return [*lines, f":{NO_FILE_COMPLETION}"]


def main() -> None:
    for line in completions(sys.argv[1:]):
        print(line)
