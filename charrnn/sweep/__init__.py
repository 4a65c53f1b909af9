"""`charrnn sweep`: a search over `charrnn train` options on Ray Tune (docs/sweep.md).

`space` (the search space, plain Python), `sweep` (plan and run), `trial` (one trial in a Ray
worker), `live` (the live table, a Tune callback), `report` (the ranked table, the reproducing
command, JSON, the plot), `command` (the click command). Ray and TensorFlow are imported only
when a sweep runs.
"""
