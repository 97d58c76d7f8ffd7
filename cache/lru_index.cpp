// lru_index: written next.
