"""One module per step of a job (accept, submit, stream, poll, finalize, deliver, cancel, sweep); chain.py builds every task."""
