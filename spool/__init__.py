"""The wt job spool: a file protocol other programs use to submit audio and read results.

The protocol (layout, file names, JSON fields, state machine) is specified in docs/spool.md,
and versioned by PROTOCOL_VERSION.
"""

PROTOCOL_VERSION = 1
