// retry_backend: written next.
