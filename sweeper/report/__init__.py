"""The report: its sections, renderers and figures, written from the saved tables only."""
