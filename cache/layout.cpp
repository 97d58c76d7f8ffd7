// layout: written next.
