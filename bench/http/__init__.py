"""HTTP progress-endpoint benchmark: ``python -m bench.http.run`` (see RESULTS.md)."""
