"""The sweep file: its typed model, loading and validation. The lowest stage: it imports only errors."""
