"""Pure logic, no I/O: the job record and its states, errors, the request schema, capabilities, events, views, the poll plan."""
