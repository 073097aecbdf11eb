"""`python -m veorelay_client`: the `veorelay` command."""
from veorelay_client.cli import main

main()
