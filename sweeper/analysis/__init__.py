"""Statistics over a trial table: aggregation, the verdict, stability, inference, importance."""
