// registry: written next.
