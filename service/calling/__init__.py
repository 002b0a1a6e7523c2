"""Calling the API for keys: the caller and the pieces it is made of (requests, senders, limits,
retries, the circuit breaker, the clock)."""
