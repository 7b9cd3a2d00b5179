"""``python -m kubesteps.testing --port 8080``: serve an emulator until interrupted."""

from kubesteps.testing.standalone import main

main()
