"""wt: Whisper transcription from the terminal and from a file spool."""

__version__ = "0.5.0"
