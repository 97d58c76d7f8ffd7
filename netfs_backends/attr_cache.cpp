// attr_cache: written next.
